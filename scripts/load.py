"""Serving throughput on this machine: policybot beside a bare Flask app, both under the
gunicorn settings of ``policybot serve`` (2 workers x 4 threads), loaded by N clients that
send signed WeChat text messages (wechatpy's signature; ``--aes``: safe mode, encrypted with
wechatpy's crypto) on loopback.

    python scripts/load.py recurring   # 100 recurring questions, 500 users: req/s, p50/p99, ratio to bare
    python scripts/load.py new         # questions never seen: embedder CPU per question, ceiling, ratio
    python scripts/load.py profile     # where one message's time goes (pyinstrument), in-process
    python scripts/load.py url --url http://127.0.0.1:8000/wechat --token T [--rate 150]   # a running server

The index is built once from the test documents (``tests/fixtures/corpus``; ``--corpus`` for
another folder such as ../shared/corpus) into ``--data`` (default: a folder under /tmp kept for
the next run). Only loopback is ever contacted; requests and time are bounded.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load_servers import AES_KEY, APPID, TOKEN, bare_app, prepare_data, serving  # noqa: E402
from wechatpy.crypto import WeChatCrypto  # noqa: E402
from wechatpy.utils import WeChatSigner  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
QUESTION_FILES = (FIXTURES / "questions.jsonl", ROOT.parent / "shared" / "eval" / "seed2.jsonl",
                  ROOT.parent / "shared" / "eval" / "dev.jsonl")
MAX_REQUESTS = 100_000


@dataclass
class Tally:
    """What the clients saw, shared under a lock."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    elapsed: float = 0.0

    def add(self, seconds: float, outcome: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.outcomes[outcome] += 1

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def ms(self, q: float) -> float:
        values = sorted(s * 1000 for s in self.latencies)
        if len(values) < 2:
            return values[0] if values else float("nan")
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]

    @property
    def errors(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome not in ("reply", "late"))

    def line(self, label: str) -> str:
        return (f"{label:<10} {self.rate:7.1f} req/s   p50 {self.ms(50):6.1f} ms   p99 {self.ms(99):6.1f} ms   "
                f"{len(self.latencies)} requests, errors {self.errors}  "
                + ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items())))


# -- messages ---------------------------------------------------------------------------------


class Signer:
    """Signed WeChat pushes as the platform sends them (plaintext, or safe mode with ``aes``)."""

    def __init__(self, token: str, *, aes: bool) -> None:
        self.token = token
        self.crypto = WeChatCrypto(token, AES_KEY, APPID) if aes else None

    def push(self, user: str, msg_id: int, text: str) -> tuple[str, bytes]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
        xml = (f"<xml><ToUserName><![CDATA[gh_loadtest]]></ToUserName><FromUserName><![CDATA[{user}]]>"
               f"</FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>")
        query = {"timestamp": timestamp, "nonce": nonce, "signature": _sign(self.token, timestamp, nonce)}
        if self.crypto is None:
            return urlencode(query), xml.encode()
        outer = self.crypto.encrypt_message(xml, nonce, timestamp)
        encrypt = outer.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        query.update(encrypt_type="aes", msg_signature=_sign(self.token, timestamp, nonce, encrypt))
        return urlencode(query), outer.encode()


def _sign(token: str, *parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, *parts)
    return signer.signature


def load_questions(limit: int) -> list[str]:
    """Up to ``limit`` distinct questions: the test fixtures', then the shared eval sets' if present."""
    seen: dict[str, None] = {}
    for path in QUESTION_FILES:
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    seen.setdefault(json.loads(line)["question"], None)
    return list(seen)[:limit]


# -- the load ---------------------------------------------------------------------------------


def run_load(url: str, signer: Signer, texts: list[str], *, clients: int, requests: int, users: int,
             offset: int = 0, rate: float = 0.0, timeout: float = 30.0, max_seconds: float = 300.0) -> Tally:
    """``clients`` connections send ``requests`` pushes back to back, message n asking
    ``texts[offset + n]`` (cyclically) as one of ``users`` users; a reply or ``success`` counts as served.
    ``rate`` > 0: open loop, message n leaves at n / rate seconds, whichever client is free sends it."""
    parts = urlsplit(url)
    tally, tickets = Tally(), itertools.count()
    base_id = time.time_ns() // 1000 * 1000
    t0 = time.monotonic()
    deadline = t0 + max_seconds

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        while (n := next(tickets)) < requests and time.monotonic() < deadline:
            if rate:
                time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            user = f"oLoadTestUser{n % users:05d}"
            query, body = signer.push(user, base_id + n, texts[(offset + n) % len(texts)])
            started = time.perf_counter()
            try:
                conn.request("POST", f"{parts.path}?{query}", body, {"Content-Type": "text/xml"})
                response = conn.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as exc:
                tally.add(time.perf_counter() - started, type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
                continue
            tally.add(time.perf_counter() - started, _classify(response.status, text))
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.elapsed = time.perf_counter() - started
    return tally


def _classify(status: int, body: bytes) -> str:
    if status != 200:
        return f"http {status}"
    if body in (b"success", b""):
        return "late"
    return "reply" if body.startswith(b"<xml>") else "unexpected body"


# -- the figures ------------------------------------------------------------------------------


def embedder_cpu(texts: list[str]) -> float:
    """CPU seconds (all threads) the embedder spends per question, as the server's workers load it."""
    from bot.serve import serving_threads
    from index.embed import DEFAULT_EMBEDDER, load_embedder

    serving_threads()  # the threads the server's workers embed with
    model = load_embedder(DEFAULT_EMBEDDER)  # the servers get no POLICYBOT_EMBEDDER: the default
    model.embed_queries([texts[0]])
    started = time.process_time()
    for text in texts:  # one at a time, as the server embeds them
        model.embed_queries([text])
    return (time.process_time() - started) / len(texts)


def new_texts(questions: list[str], count: int) -> list[str]:
    """``count`` questions no cache has seen: each base question with a distinct tail."""
    tag = secrets.token_hex(3)
    return [f"{questions[n % len(questions)]} 请问{tag}第{n}个" for n in range(count)]


def compare(args: argparse.Namespace, texts: list[str], *, warm: bool) -> tuple[Tally, Tally]:
    """Both servers up at once, loaded in turns (``--rounds``), so that a busy machine slows both alike;
    the figures are the rounds pooled, and each server's own CPU per request."""
    data, signer = prepare_data(args), Signer(TOKEN, aes=args.aes)
    load = dict(clients=args.clients, requests=args.requests // args.rounds, users=args.users)
    tallies: dict[str, list[Tally]] = {"bare": [], "policybot": []}
    cpu = {"bare": 0.0, "policybot": 0.0}
    with serving("bare", data, args.port, args.workers, aes=args.aes) as bare, \
            serving("policybot", data, args.port + 1, args.workers, aes=args.aes) as bot:
        servers = {"bare": bare, "policybot": bot}
        run_load(bare.url, signer, texts, clients=args.clients, requests=500, users=args.users)
        # warm: every question asked once, so each worker's caches hold them all
        offset = len(texts) * 4 if warm else 200
        run_load(bot.url, signer, texts, clients=args.clients, requests=offset, users=args.users)
        for _ in range(args.rounds):
            for name, server in servers.items():
                before = server.cpu_s()
                tallies[name].append(run_load(server.url, signer, texts, offset=offset, **load))
                cpu[name] += server.cpu_s() - before
            offset += load["requests"]  # new questions stay new: each round asks the next ones
    pooled = {name: _pool(runs) for name, runs in tallies.items()}
    for name, tally in pooled.items():
        print(tally.line(name) + f"   server CPU {cpu[name] / len(tally.latencies) * 1000:.2f} ms/request")
    bare_t, bot_t = pooled["bare"], pooled["policybot"]
    print(f"ratio      {bot_t.rate / bare_t.rate:.2f} of the bare app's req/s; server CPU per request "
          f"{cpu['policybot'] / len(bot_t.latencies) / (cpu['bare'] / len(bare_t.latencies)):.2f}x the bare app's")
    return bare_t, bot_t


def _pool(runs: list[Tally]) -> Tally:
    pooled = Tally()
    for run in runs:
        pooled.latencies += run.latencies
        pooled.outcomes.update(run.outcomes)
        pooled.elapsed += run.elapsed
    return pooled


def cmd_recurring(args: argparse.Namespace) -> int:
    questions = load_questions(args.questions)
    print(f"recurring: {len(questions)} questions, {args.users} users, {args.clients} clients, "
          f"{args.workers} workers x 4 threads")
    bare, bot = compare(args, questions, warm=True)
    return 1 if bare.errors or bot.errors else 0


def cmd_new(args: argparse.Namespace) -> int:
    questions = load_questions(args.questions)
    texts = new_texts(questions, args.requests + 1000)
    cpu = embedder_cpu(new_texts(questions, 60))
    cores = len(os.sched_getaffinity(0))
    ceiling = cores / cpu
    print(f"new questions: embedder {cpu * 1000:.1f} ms CPU per question; ceiling {cores} cores / that = "
          f"{ceiling:.1f} req/s")
    _, bot = compare(args, texts, warm=False)
    print(f"achieved   {bot.rate / ceiling:.2f} of the embedder's ceiling")
    return 1 if bot.errors else 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Where a signed text message's time goes, through the Flask app, cache warm."""
    from pyinstrument import Profiler

    from bot.app import create_app

    data = prepare_data(args)
    app = create_app({"DATA": data, "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID, "RATE_PER_MINUTE": 100000,
                      "WECHAT_AES_KEY": AES_KEY if args.aes else None}, instance_path=Path(args.data) / "instance")
    client, signer, questions = app.test_client(), Signer(TOKEN, aes=args.aes), load_questions(args.questions)
    msg_ids = itertools.count(time.time_ns())

    def send(n: int) -> None:
        query, body = signer.push(f"oProfileUser{n % args.users:05d}", next(msg_ids), questions[n % len(questions)])
        assert client.post(f"/wechat?{query}", data=body, content_type="text/xml").status_code == 200

    for n in range(len(questions) * 2):
        send(n)
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    with profiler:
        for n in range(args.requests):
            send(n)
    elapsed = time.perf_counter() - started
    print(f"{args.requests} messages in {elapsed:.2f} s: {elapsed / args.requests * 1000:.2f} ms each (one thread)")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("--url must point at loopback")
    tally = run_load(args.url, Signer(args.token, aes=False), load_questions(args.questions),
                     clients=args.clients, requests=args.requests, users=args.users, rate=args.rate)
    print(tally.line("server"))
    return 1 if tally.errors else 0


def cmd_bare(args: argparse.Namespace) -> int:
    from bot.serve import run_gunicorn

    run_gunicorn(bare_app, host="127.0.0.1", port=args.port, workers=args.workers)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("recurring", "new", "profile", "url", "_bare"))
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3, help="turns of load on each server (interleaved)")
    ap.add_argument("--questions", type=int, default=100, help="distinct questions (recurring mode)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (4 threads each)")
    ap.add_argument("--port", type=int, default=18700, help="the bare app's port; policybot's is the next")
    ap.add_argument("--aes", action="store_true", help="safe mode: encrypted pushes and replies")
    ap.add_argument("--corpus", default=str(FIXTURES / "corpus"), help="documents of the index")
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "policybot-load"),
                    help="data folder (the index is built there once)")
    ap.add_argument("--url", default="http://127.0.0.1:8000/wechat")
    ap.add_argument("--token", default=TOKEN)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="url mode: total requests per second, paced across the clients (0: back to back)")
    args = ap.parse_args(argv)
    if not (1 <= args.clients <= 500 and 1 <= args.requests <= MAX_REQUESTS):
        ap.error(f"--clients must be 1..500 and --requests 1..{MAX_REQUESTS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modes = {"recurring": cmd_recurring, "new": cmd_new, "profile": cmd_profile, "url": cmd_url, "_bare": cmd_bare}
    return modes[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
