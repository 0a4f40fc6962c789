"""The servers of ``scripts/load.py``: ``policybot serve`` and a bare Flask app, both under
the gunicorn settings of :func:`bot.serve.run_gunicorn`, started on loopback over an index
built once from the test documents; each server's CPU time is read from /proc."""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wechatpy.utils import WeChatSigner

ROOT = Path(__file__).resolve().parent.parent
TOKEN, APPID = "loadtesttoken", "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def prepare_data(args: argparse.Namespace) -> Path:
    """``--data`` with a published index, built from ``--corpus`` on first use."""
    data = Path(args.data)
    if (data / "index" / "current").exists():
        return data
    from index.library import add_paths, build_library_index

    files = sorted(p for p in Path(args.corpus).iterdir()
                   if p.suffix in (".txt", ".md") and p.name != "SOURCES.md")  # where each came from
    print(f"building the index of {len(files)} documents from {args.corpus} into {data} ...", flush=True)
    add_paths(data, files)
    build_library_index(data)
    return data


def server_env(data: Path, *, aes: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
    return {**env, "PYTHONPATH": str(ROOT), "POLICYBOT_DATA": str(data), "POLICYBOT_WECHAT_TOKEN": TOKEN,
            "POLICYBOT_WECHAT_APPID": APPID, "POLICYBOT_WECHAT_AES_KEY": AES_KEY if aes else "",
            # Counted like any request, but high enough that 500 users asking back to back are not refused.
            "POLICYBOT_RATE_PER_MINUTE": "100000"}


@dataclass
class Server:
    """A running server: its URL and process (CPU time is read from /proc for it and its workers)."""

    url: str
    process: subprocess.Popen

    def cpu_s(self) -> float:
        """CPU seconds used so far by the server and its gunicorn workers."""
        ticks = os.sysconf("SC_CLK_TCK")
        family, total = {self.process.pid}, 0.0
        for stat in _stats():
            pid, ppid, user, system = stat
            if pid in family or ppid in family:
                family.add(pid)
                total += (user + system) / ticks
        return total


def _stats() -> list[tuple[int, int, int, int]]:
    """(pid, ppid, utime, stime) of every process, parents first (by pid, which is good enough here)."""
    rows = []
    for entry in sorted(Path("/proc").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        rows.append((int(entry.name), int(fields[1]), int(fields[11]), int(fields[12])))
    return rows


@contextmanager
def serving(kind: str, data: Path, port: int, workers: int, *, aes: bool) -> Iterator[Server]:
    """``policybot serve`` (``kind`` "policybot") or the bare app under the same gunicorn settings."""
    load_script = str(Path(__file__).with_name("load.py"))
    command = ([sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", str(workers)]
               if kind == "policybot" else [sys.executable, load_script, "_bare", "--port", str(port),
                                            "--workers", str(workers)])
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=server_env(data, aes=aes), cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            _wait_ready(port, process, log)
            yield Server(f"http://127.0.0.1:{port}/wechat", process)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_ready(port: int, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            sys.exit(f"the server stopped:\n{log.read().decode(errors='replace')[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("the server did not become ready within 180 s")


def bare_app():
    """The web stack alone: a Flask view that checks the signature and answers ``success``."""
    from flask import Flask, request

    app = Flask("bare")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @app.post("/wechat")
    def wechat() -> tuple[str, int]:
        args = request.args
        body = request.get_data()
        signer = WeChatSigner()
        signer.add_data(TOKEN, args.get("timestamp", ""), args.get("nonce", ""))
        ok = signer.signature == args.get("signature") and body
        return ("success", 200) if ok else ("", 403)

    return app
