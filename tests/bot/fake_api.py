"""A local fake of the platform HTTP APIs the bot calls after a webhook has answered:
WeChat ``cgi-bin/token`` + ``message/custom/send``, WeCom ``cgi-bin/gettoken`` +
``message/send``, and Telegram ``bot<token>/sendMessage``. It listens on 127.0.0.1
in a thread, records every call, and can be told to call the next token stale.

Shapes: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html,
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html,
https://developer.work.weixin.qq.com/document/path/91039, https://developer.work.weixin.qq.com/document/path/90236,
https://core.telegram.org/bots/api#sendmessage.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: A user the fake refuses to message (errcode 45015), to exercise non-token errors.
GONE_USER = "openid-gone"


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    tokens_issued: int = 0
    stale: set[str] = field(default_factory=set)


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops bursts of concurrent connects, which then retry after 1 s.
    request_queue_size = 128


class FakeAPI:
    """The fake server; use as a context manager. ``base_wechat`` etc. are the URLs to configure."""

    def __init__(self) -> None:
        self._state = _State()
        self._cond = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown (once per test) fast.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-api", daemon=True)

    def __enter__(self) -> FakeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_wechat(self) -> str:
        return f"{self.url}/cgi-bin/"

    @property
    def base_wecom(self) -> str:
        return f"{self.url}/wecom/cgi-bin/"

    @property
    def base_telegram(self) -> str:
        return f"{self.url}/telegram"

    # What tests look at -------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._cond:
            return list(self._state.calls)

    def sent(self, path_suffix: str) -> list[Call]:
        """The message calls whose path ends with ``path_suffix`` (e.g. ``message/custom/send``)."""
        return [c for c in self.calls if c.path.endswith(path_suffix)]

    def token_fetches(self) -> int:
        return sum(1 for c in self.calls if c.path.endswith(("/token", "/gettoken")))

    def expire_tokens(self) -> None:
        """Make every token issued so far stale: sends with one get errcode 42001."""
        with self._cond:
            self._state.stale.update(f"TOKEN-{n}" for n in range(1, self._state.tokens_issued + 1))

    def wait_for(self, predicate: Callable[[FakeAPI], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (deliveries happen on other threads)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    # Server side -------------------------------------------------------

    def _record(self, call: Call) -> dict:
        with self._cond:
            self._state.calls.append(call)
            reply = self._answer(call)
            self._cond.notify_all()
        return reply

    def _answer(self, call: Call) -> dict:
        if call.path.endswith(("/token", "/gettoken")):
            self._state.tokens_issued += 1
            return {"access_token": f"TOKEN-{self._state.tokens_issued}", "expires_in": 7200}
        if call.path.startswith("/telegram/bot"):
            return {"ok": True, "result": {"message_id": len(self._state.calls)}}
        token = call.query.get("access_token", "")
        if token in self._state.stale:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if not token.startswith("TOKEN-"):
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if isinstance(call.body, dict) and call.body.get("touser") == GONE_USER:
            # The real API says this when the user has not written in 48 hours.
            return {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
        return {"errcode": 0, "errmsg": "ok"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 closes each connection, so no client socket outlives a test.
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._reply(fake._record(self._call(None)))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw.decode("utf-8")) if raw else None
                except ValueError:
                    body = raw
                self._reply(fake._record(self._call(body)))

            def _call(self, body: Any) -> Call:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                return Call(self.command, parts.path, query, body)

            def _reply(self, payload: dict) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep pytest output clean; calls are recorded instead

        return Handler
