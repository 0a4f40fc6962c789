"""Process probes for scripts/soak.py: a server's worker processes, their memory, its health."""

from __future__ import annotations

import time
from pathlib import Path

import requests


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
