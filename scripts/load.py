"""Load test: N concurrent clients send signed WeChat text messages to a running
policybot on loopback and report throughput, latency percentiles and errors.

Each request is what the WeChat server would send in plaintext mode
(https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html):
a fresh timestamp and nonce signed with the Token, a distinct MsgId, a user per
client and a question from a varied list. Only 127.0.0.1/localhost is accepted, and
both the request count and the wall time are bounded.

    .venv/bin/python scripts/load.py --url http://127.0.0.1:8000/wechat --token TOKEN \\
        --clients 50 --requests 1000 --timeout 10
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from wechatpy.utils import WeChatSigner

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_CLIENTS = 500
MAX_REQUESTS = 100_000
QUESTIONS = (
    "班里人太多了谁管？", "今年幼儿园有什么目标？", "乡村教师有没有补贴？", "校园安全重点抓哪些工作？",
    "大班额怎么解决", "高考综合改革有什么安排", "学前教育普惠率要达到多少", "教师队伍建设怎么做",
    "职业教育有什么新举措", "控辍保学", "课后服务", "目录", "帮助", "12", "那高中呢？",
    "What about teacher training?", "营养改善计划", "芙蓉学校建设", "民办教育怎么管理", "教育信息化",
)


@dataclass
class Tally:
    """What the clients saw, shared under a lock."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, outcome: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.outcomes[outcome] += 1


def sign(token: str, timestamp: str, nonce: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce)
    return signer.signature


def message_xml(user: str, msg_id: int, text: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_loadtest]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def classify(response: requests.Response) -> str:
    """``reply`` (a passive answer), ``late`` (``success``: answer to follow), or ``http <code>``."""
    if response.status_code != 200:
        return f"http {response.status_code}"
    if response.text == "success":
        return "late"
    return "reply" if response.text.startswith("<xml>") else "unexpected body"


def run_client(n: int, args: argparse.Namespace, tickets: itertools.count, deadline: float,
               tally: Tally) -> None:
    user = f"oLoadTest{n:04d}{secrets.token_hex(8)}"[:28]
    with requests.Session() as http:
        while (ticket := next(tickets)) < args.requests and time.monotonic() < deadline:
            if args.rate:  # open loop: request N leaves at N/rate seconds, whoever is free sends it
                time.sleep(max(0.0, args.t0 + ticket / args.rate - time.monotonic()))
            timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
            query = {"timestamp": timestamp, "nonce": nonce, "signature": sign(args.token, timestamp, nonce)}
            body = message_xml(user, args.first_msg_id + ticket, QUESTIONS[ticket % len(QUESTIONS)])
            started = time.perf_counter()
            try:
                response = http.post(args.url, params=query, data=body, timeout=args.timeout,
                                     headers={"Content-Type": "text/xml"})
            except requests.RequestException as exc:
                tally.add(time.perf_counter() - started, type(exc).__name__)
                continue
            tally.add(time.perf_counter() - started, classify(response))


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000/wechat", help="the /wechat URL (loopback only)")
    ap.add_argument("--token", required=True, help="POLICYBOT_WECHAT_TOKEN of the server")
    ap.add_argument("--clients", type=int, default=50, help=f"concurrent clients (max {MAX_CLIENTS})")
    ap.add_argument("--requests", type=int, default=1000, help=f"total requests (max {MAX_REQUESTS})")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="total requests per second, paced across the clients (0: each client sends "
                         "back to back, which measures saturation: latency then grows with --clients)")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="stop sending after this long")
    args = ap.parse_args(argv)
    # One base for all clients: MsgIds stay distinct within a run and across runs.
    args.first_msg_id = time.time_ns() // 1000 * 1000
    host = urlsplit(args.url).hostname or ""
    if host not in LOOPBACK:
        ap.error(f"--url must point at loopback (127.0.0.1), not {host!r}")
    if not (1 <= args.clients <= MAX_CLIENTS and 1 <= args.requests <= MAX_REQUESTS):
        ap.error(f"--clients must be 1..{MAX_CLIENTS} and --requests 1..{MAX_REQUESTS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tally, tickets = Tally(), itertools.count()
    started = time.perf_counter()
    args.t0 = time.monotonic()
    deadline = args.t0 + args.max_seconds
    threads = [threading.Thread(target=run_client, args=(n, args, tickets, deadline, tally), daemon=True)
               for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    done = len(tally.latencies)
    errors = sum(n for outcome, n in tally.outcomes.items() if outcome not in ("reply", "late"))
    ms = sorted(s * 1000 for s in tally.latencies)
    print(f"requests   {done} in {elapsed:.2f} s with {args.clients} clients")
    print(f"throughput {done / elapsed:.1f} req/s")
    if ms:
        print(f"latency    p50 {percentile(ms, 50):.1f} ms   p99 {percentile(ms, 99):.1f} ms   "
              f"max {ms[-1]:.1f} ms")
    print("outcomes   " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.outcomes.items())))
    print(f"errors     {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
