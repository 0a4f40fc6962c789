"""Soak test (issue 9): a real ``policybot serve`` on loopback takes a long mixed load from
many clients while one of its workers is killed, and must never answer 5xx, answer and log
every valid message exactly once, and not grow.

It builds a data dir from corpus/ in a temporary folder, starts ``policybot serve`` there
with every channel and the admin API switched on, and runs ``--clients`` threads that send
``--requests`` requests paced over ``--seconds``: questions on the web API, WeChat
(plaintext), WeCom (encrypted) and Telegram, platform retries of the same message, bad
signatures, stale timestamps, oversized and deeply nested bodies, and bad uploads; one more
thread re-indexes and rolls back now and then. At 40 % of the run one worker gets SIGKILL
(gunicorn starts another). A valid message whose connection broke is sent again, as the
platforms do. Only 127.0.0.1 is ever contacted; counts and time are bounded.

    .venv/bin/python scripts/soak.py                      # 20,000 requests, 10 minutes, 20 clients
    .venv/bin/python scripts/soak.py --requests 2000 --seconds 60

Prints the figures and exits 1 if any target is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto
from wechatpy.utils import WeChatSigner

ROOT = Path(__file__).resolve().parent.parent
TOKEN, AES_KEY = "soakToken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP_ID, AGENT_ID = "wwsoak0123456789", 1000002
TG_SECRET, ADMIN = "soak-secret", "soak-admin-token-0123456789abcdef"
QUESTIONS = ("班里人太多了谁管？", "今年幼儿园有什么目标？", "乡村教师有没有补贴？", "大班额怎么解决", "课后服务",
             "教师队伍建设怎么做", "职业教育有什么新举措", "芙蓉学校建设", "教育信息化", "帮助", "目录")
#: Request kinds and their weights: valid messages first, then what must be refused.
KINDS = {"web": 16, "wechat": 16, "wecom": 10, "telegram": 10, "retry": 12, "bad_signature": 6, "stale": 6,
         "oversized": 5, "nested": 6, "bad_upload": 3}
EXPECTED = {"bad_signature": {403}, "stale": {403}, "oversized": {413}, "nested": {400}, "bad_upload": {400}}
TAG = re.compile(r"〔(s\d+)〕")
MAX_REQUESTS, MAX_SECONDS = 100_000, 3600


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)   # (kind, status)
    errors: Counter = field(default_factory=Counter)     # connection errors by kind
    sent: dict[str, tuple] = field(default_factory=dict)  # tag -> the valid request, for retries
    answered: Counter = field(default_factory=Counter)   # tag -> 200s with an answer
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def wechat_xml(user: str, text: str, msg_id: int, to: str = "gh_soak", agent: int | None = None) -> str:
    extra = f"<AgentID>{agent}</AgentID>" if agent else ""
    return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId>{extra}</xml>")


class Client:
    """One simulated sender: its own user ids and HTTP session."""

    def __init__(self, n: int, url: str, tally: Tally, rng: random.Random) -> None:
        self.n, self.url, self.tally, self.rng = n, url, tally, rng
        self.user = f"oSoak{n:03d}{secrets.token_hex(6)}"
        self.http = requests.Session()
        self.crypto = WorkCrypto(TOKEN, AES_KEY, CORP_ID)

    def request(self, ticket: int) -> None:
        kind = self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        if kind == "retry":
            with self.tally.lock:
                tags = list(self.tally.sent)
            if not tags:
                kind = "web"
            else:
                tag = self.rng.choice(tags[-200:])
                return self.send_valid(tag, *self.tally.sent[tag][1:], kind="retry")
        if kind in ("web", "wechat", "wecom", "telegram"):
            tag = f"s{ticket}"
            request = getattr(self, f"_{kind}")(f"{self.rng.choice(QUESTIONS)}〔{tag}〕", ticket)
            with self.tally.lock:
                self.tally.sent[tag] = (kind, *request)
            return self.send_valid(tag, *request, kind=kind)
        method, path, kwargs = getattr(self, f"_{kind}")()
        try:
            response = self.http.request(method, self.url + path, timeout=30, **kwargs)
        except requests.RequestException as exc:
            with self.tally.lock:
                self.tally.errors[(kind, type(exc).__name__)] += 1
            return None
        self.record(kind, response.status_code, expected=EXPECTED[kind])
        return None

    def send_valid(self, tag: str, method: str, path: str, kwargs: dict, *, kind: str) -> None:
        for _attempt in range(5):  # a platform sends a message again when the connection broke
            try:
                response = self.http.request(method, self.url + path, timeout=30, **kwargs)
            except requests.RequestException as exc:
                with self.tally.lock:
                    self.tally.errors[(kind, type(exc).__name__)] += 1
                time.sleep(0.5)
                continue
            self.record(kind, response.status_code, expected={200})
            if response.status_code == 200 and response.content:
                with self.tally.lock:
                    self.tally.answered[tag] += 1
            return

    def record(self, kind: str, status: int, *, expected: set[int]) -> None:
        with self.tally.lock:
            self.tally.statuses[(kind, status)] += 1
            if status not in expected:
                self.tally.unexpected.append(f"{kind}: {status}")

    # valid messages: (method, path, requests kwargs)
    def _web(self, text: str, ticket: int) -> tuple:
        return "POST", "/api/ask", {"json": {"question": text}, "headers": {"Idempotency-Key": f"soak-{ticket}"}}

    def _wechat(self, text: str, ticket: int) -> tuple:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        query = {"timestamp": timestamp, "nonce": nonce, "signature": sign(TOKEN, timestamp, nonce)}
        body = wechat_xml(self.user, text, 8_000_000_000 + ticket).encode()
        return "POST", "/wechat", {"params": query, "data": body}

    def _wecom(self, text: str, ticket: int) -> tuple:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        inner = wechat_xml(self.user, text, 9_000_000_000 + ticket, to=CORP_ID, agent=AGENT_ID)
        sealed = xmltodict.parse(self.crypto.encrypt_message(inner, nonce, timestamp))["xml"]
        body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID>{AGENT_ID}</AgentID>"
                f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>").encode()
        query = {"msg_signature": sealed["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        return "POST", "/wecom", {"params": query, "data": body}

    def _telegram(self, text: str, ticket: int) -> tuple:
        update = {"update_id": 500_000_000 + ticket, "message": {"message_id": ticket, "text": text,
                  "chat": {"id": 1000 + self.n, "type": "private"}, "from": {"id": 1000 + self.n}}}
        return "POST", "/telegram", {"json": update, "headers": {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}}

    # what must be refused
    def _bad_signature(self) -> tuple:
        method, path, kwargs = self._wechat("班额", 0)
        kwargs["params"]["signature"] = "0" * 40
        return method, path, kwargs

    def _stale(self) -> tuple:
        timestamp, nonce = str(int(time.time()) - 3600), secrets.token_hex(5)
        query = {"timestamp": timestamp, "nonce": nonce, "signature": sign(TOKEN, timestamp, nonce)}
        return "POST", "/wechat", {"params": query, "data": wechat_xml(self.user, "班额", 1).encode()}

    def _oversized(self) -> tuple:
        if self.rng.random() < 0.5:
            return "POST", "/api/ask", {"data": b'{"question": "' + b"x" * (1100 * 1024) + b'"}',
                                        "headers": {"Content-Type": "application/json"}}
        method, path, kwargs = self._wechat("班额", 0)
        kwargs["data"] = b"<xml>" + b"x" * (70 * 1024) + b"</xml>"
        return method, path, kwargs

    def _nested(self) -> tuple:
        body = b'{"question": "x", "y": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
        if self.rng.random() < 0.5:
            return "POST", "/api/ask", {"data": body, "headers": {"Content-Type": "application/json"}}
        return "POST", "/telegram", {"data": body, "headers": {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
                                                               "Content-Type": "application/json"}}

    def _bad_upload(self) -> tuple:
        if self.rng.random() < 0.5:
            name, content = "garbage.docx", b"PK\x03\x04" + os.urandom(2048)
        else:
            name, content = "bomb.docx", zip_bomb()
        return "POST", "/admin/documents", {"files": {"file": (name, content)},
                                            "headers": {"Authorization": f"Bearer {ADMIN}"}}


_BOMB: bytes | None = None


def zip_bomb(mib: int = 100) -> bytes:
    """A .docx-shaped zip whose one member inflates to ``mib`` MiB (built once)."""
    global _BOMB
    if _BOMB is None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            with archive.open("word/document.xml", "w", force_zip64=True) as member:
                for _ in range(mib):
                    member.write(b"<w:p/>" * (2**20 // 6))
        _BOMB = out.getvalue()
    return _BOMB


def admin_churn(url: str, stop: threading.Event, tally: Tally, every_s: float) -> None:
    """Re-index, then roll back, then re-index…, every ``every_s`` seconds."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    turn = 0
    while not stop.wait(every_s):
        kind = "reindex" if turn % 2 == 0 else "rollback"
        turn += 1
        try:
            response = requests.post(f"{url}/admin/{kind}", headers=headers, json={} if kind == "rollback" else None,
                                     timeout=60)
        except requests.RequestException as exc:
            with tally.lock:
                tally.errors[(kind, type(exc).__name__)] += 1
            continue
        expected = {202, 409} if kind == "reindex" else {200, 404, 409}
        with tally.lock:
            tally.statuses[(kind, response.status_code)] += 1
            if response.status_code not in expected:
                tally.unexpected.append(f"{kind}: {response.status_code} {response.text[:200]}")


def prepare(data: Path) -> None:
    from index.library import add_paths, build_library_index

    add_paths(data, [ROOT / "corpus"])
    build_library_index(data)


def start_server(data: Path, workers: int) -> tuple[subprocess.Popen, str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
    env.update(POLICYBOT_DATA=str(data), POLICYBOT_WECHAT_TOKEN=TOKEN, POLICYBOT_WECOM_TOKEN=TOKEN,
               POLICYBOT_WECOM_AES_KEY=AES_KEY, POLICYBOT_WECOM_CORP_ID=CORP_ID,
               POLICYBOT_WECOM_AGENT_ID=str(AGENT_ID), POLICYBOT_TELEGRAM_SECRET=TG_SECRET,
               POLICYBOT_ADMIN_TOKEN=ADMIN, POLICYBOT_RATE_PER_MINUTE="0", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--workers", str(workers)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read() -> None:
        for line in process.stdout:
            log.append(line)
            match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
            if match and not url:
                url.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(120) or not url:
        process.kill()
        raise SystemExit("the server did not start:\n" + "".join(log[-40:]))
    return process, url[0], log


def worker_pids(arbiter: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()]
    except OSError:
        return []


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit("the server never became healthy")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20_000, help=f"total requests (max {MAX_REQUESTS})")
    ap.add_argument("--seconds", type=float, default=600.0, help=f"spread over this long (max {MAX_SECONDS})")
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients (1-200)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--seed", type=int, default=9)
    args = ap.parse_args(argv)
    if not (1 <= args.requests <= MAX_REQUESTS and 1 <= args.seconds <= MAX_SECONDS and 1 <= args.clients <= 200):
        ap.error("out of bounds")
    with tempfile.TemporaryDirectory(prefix="policybot-soak-") as tmp:
        data = Path(tmp) / "data"
        prepare(data)
        process, url, log = start_server(data, args.workers)
        try:
            return run(args, url, process, data, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def run(args: argparse.Namespace, url: str, process: subprocess.Popen, data: Path, log: list[str]) -> int:
    wait_healthy(url)
    tally, stop = Tally(), threading.Event()
    tickets, ticket_lock = iter(range(args.requests)), threading.Lock()
    t0 = time.monotonic()
    rate = args.requests / args.seconds

    def client(n: int) -> None:
        worker = Client(n, url, tally, random.Random(args.seed * 1000 + n))
        while True:
            with ticket_lock:
                ticket = next(tickets, None)
            if ticket is None or time.monotonic() - t0 > args.seconds * 1.5:
                return
            time.sleep(max(0.0, t0 + ticket / rate - time.monotonic()))
            worker.request(ticket)

    rss: dict[int, list[float]] = {}
    killed: list[int] = []

    def monitor() -> None:
        while not stop.wait(2.0):
            for pid in worker_pids(process.pid):
                value = rss_mib(pid)
                if value is not None:
                    rss.setdefault(pid, []).append((time.monotonic() - t0, value))
            if not killed and time.monotonic() - t0 > 0.4 * args.seconds:
                victims = worker_pids(process.pid)
                if victims:
                    os.kill(victims[0], signal.SIGKILL)
                    killed.append(victims[0])

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
    helpers = [threading.Thread(target=monitor, daemon=True),
               threading.Thread(target=admin_churn, args=(url, stop, tally, max(args.seconds / 8, 10)), daemon=True)]
    for thread in threads + helpers:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - t0
    stop.set()
    time.sleep(1.0)
    return report(args, tally, rss, killed, data, elapsed)


def report(args: argparse.Namespace, tally: Tally, rss: dict, killed: list[int], data: Path, elapsed: float) -> int:
    from bot.storage import FILENAME, Storage

    log = Storage(data / FILENAME)  # the question log's owner reads it
    try:
        logged = Counter(m.group(1) for entry in log.questions() for m in [TAG.search(entry.question)] if m)
    finally:
        log.close()
    sent = set(tally.sent)
    unanswered = sorted(sent - set(tally.answered))
    twice_logged = sorted(tag for tag in sent if logged[tag] > 1)
    not_logged = sorted(tag for tag in sent if logged[tag] == 0)
    total = sum(tally.statuses.values())
    fives = sum(n for (_, status), n in tally.statuses.items() if status >= 500)
    warm = 0.2 * args.seconds
    growth = {}
    for pid, samples in rss.items():
        after_warm = [v for t, v in samples if t >= warm]
        if pid not in killed and len(after_warm) >= 2 and samples[0][0] < warm:
            growth[pid] = (after_warm[0], after_warm[-1], after_warm[-1] / after_warm[0] - 1)
    print(f"requests        {total} answered by the server in {elapsed:.0f} s ({total / elapsed:.1f}/s), "
          f"{args.clients} clients; connection errors {sum(tally.errors.values())} "
          f"({', '.join(f'{k}/{e}: {n}' for (k, e), n in sorted(tally.errors.items())) or 'none'})")
    by_kind = Counter()
    for (kind, status), n in tally.statuses.items():
        by_kind[f"{kind} {status}"] += n
    print("by kind         " + ", ".join(f"{k}: {n}" for k, n in sorted(by_kind.items())))
    print(f"5xx             {fives}")
    print(f"unexpected      {len(tally.unexpected)} {tally.unexpected[:5]}")
    print(f"valid messages  {len(sent)}: unanswered {len(unanswered)}, logged twice {len(twice_logged)}, "
          f"not logged {len(not_logged)} {(unanswered + twice_logged + not_logged)[:5]}")
    print(f"worker killed   {killed or 'none'} (SIGKILL at 40 % of the run)")
    for pid, (first, last, change) in sorted(growth.items()):
        print(f"worker {pid} RSS  {first:.0f} MiB after warm-up -> {last:.0f} MiB at the end ({change:+.1%})")
    ok = (fives == 0 and not tally.unexpected and not unanswered and not twice_logged and not not_logged
          and bool(killed) and all(change <= 0.10 for _, _, change in growth.values()))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
