"""``policybot serve`` as a real subprocess for tests that talk HTTP over loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

from tests.conftest import ROOT

LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")
START_TIMEOUT_S = 60.0


class Server:
    """``policybot serve`` in a subprocess, on a port the OS picks (no race for a free port)."""

    def __init__(self, data: os.PathLike, workers: int = 2, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
        environ.update(POLICYBOT_DATA=str(data), PYTHONUNBUFFERED="1", **(env or {}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--workers", str(workers)],
            cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group: stopping it stops its workers too
        )
        self.log: list[str] = []
        self._url: str | None = None
        self._found = threading.Event()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        for line in self.process.stdout:  # read to the end, or the workers would block on a full pipe
            self.log.append(line)
            match = LISTENING.search(line)
            if match and not self._found.is_set():
                self._url = match.group(1)
                self._found.set()
        self._found.set()

    def url(self, timeout: float) -> str:
        if not self._found.wait(timeout) or self._url is None:
            raise AssertionError("server did not start:\n" + "".join(self.log))
        return self._url

    def stop(self) -> None:
        """SIGTERM to the arbiter (it stops its workers); SIGKILL to its group if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._reader.join(timeout=5)  # the pipe ends with the process group; then close our end
        self.process.stdout.close()
