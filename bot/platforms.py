"""The platform API clients that send a message outside any webhook request (a late
answer): WeChat's customer-service message
(https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html),
WeCom's ``message/send`` (https://developer.work.weixin.qq.com/document/path/90236) and
Telegram's ``sendMessage``.

WeChat and WeCom need an access token
(https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html,
https://developer.work.weixin.qq.com/document/path/91039), and fetching a new one invalidates
the old. So the token lives in wechatpy's session storage on the bot's database
(:class:`bot.storage.TokenStorage`), shared by every gunicorn worker: one worker fetches
(under a lease) while the others wait for its token, and a token the API calls stale is
refreshed once. The clients are wechatpy's, pointed at a configurable API base URL so tests
can run them against a fake on loopback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.enterprise import WeChatClient as WorkWeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.errors import BotError

log = logging.getLogger(__name__)

#: errcodes meaning "this access token is no good": invalid credential, invalid, expired.
STALE_TOKEN_CODES = frozenset({40001, 40014, 42001})
T = TypeVar("T")


class _TimeoutSession(requests.Session):
    """A requests session with a default timeout: wechatpy fetches tokens without one."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(*args, **kwargs)


class _SharedTokenMixin:
    """For wechatpy clients: one token fetch at a time, one refresh on a stale-token error.

    wechatpy's own retry (``auto_retry``) refetches on every stale answer without a
    bound and without a lock; concurrent deliveries would each fetch a token and
    invalidate each other's. With a shared session storage (one that can ``lease``), the
    storage decides when a token expires, and one worker at a time fetches.
    """

    API_BASE_URL: str
    TOKEN_PATH: str

    def _setup(self, api_base: str, timeout: float) -> None:
        self.API_BASE_URL = api_base.rstrip("/") + "/"
        self.timeout = timeout
        self._http = _TimeoutSession(timeout)
        self._token_lock = threading.Lock()
        self.token_fetches = 0

    @property
    def access_token(self) -> str:
        with self._token_lock:
            if not self._shared:
                return super().access_token  # type: ignore[misc]
            return self.session.get(self.access_token_key) or self._fetch_shared()  # type: ignore[attr-defined]

    @property
    def _shared(self) -> bool:
        return hasattr(self.session, "lease")  # type: ignore[attr-defined]

    def _fetch_shared(self) -> str:
        """Fetch a token under the storage's lease, or wait for the worker that holds it."""
        session, key = self.session, self.access_token_key  # type: ignore[attr-defined]
        if session.lease(key, self.timeout + 1):
            try:
                self.fetch_access_token()
            except BaseException:
                session.release(key)
                raise
            return session.get(key)
        deadline = time.monotonic() + self.timeout + 1
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if token := session.get(key):
                return token
        log.warning("no access token from the worker fetching it; fetching one here")
        self.fetch_access_token()
        return session.get(key)

    def _token_params(self) -> dict[str, str]:
        raise NotImplementedError

    def fetch_access_token(self) -> dict:
        """Fetch a token from ``API_BASE_URL`` (wechatpy hard-codes the public host)."""
        self.token_fetches += 1
        return self._fetch_access_token(  # type: ignore[attr-defined]
            url=self.API_BASE_URL + self.TOKEN_PATH, params=self._token_params()
        )

    def call(self, method: Callable[..., T], *args: Any) -> T:
        """Call an API method; if the platform calls the token stale, refresh it once and retry."""
        used = self.access_token
        try:
            return method(*args)
        except WeChatClientException as exc:
            if exc.errcode not in STALE_TOKEN_CODES:
                raise
            log.info("access token refused (errcode %s); refreshing once", exc.errcode)
            self._refresh(stale=used)
            return method(*args)

    def _refresh(self, *, stale: str) -> None:
        with self._token_lock:
            # Another thread (or worker) may have refreshed already; a second fetch would revoke its token.
            if self.session.get(self.access_token_key) != stale:  # type: ignore[attr-defined]
                return
            if not self._shared:
                self.fetch_access_token()
                return
            self.session.delete(self.access_token_key)  # type: ignore[attr-defined]
            self._fetch_shared()

    def close(self) -> None:
        self._http.close()


class OfficialAccountClient(_SharedTokenMixin, WeChatClient):
    """wechatpy's Official Account client with a configurable base URL and a shared token."""

    TOKEN_PATH = "token"

    def __init__(self, appid: str, secret: str, *, api_base: str, timeout: float = 5.0,
                 session: Any = None) -> None:
        super().__init__(appid, secret, session=session, auto_retry=False)
        self._setup(api_base, timeout)

    def _token_params(self) -> dict[str, str]:
        return {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}


class WorkClient(_SharedTokenMixin, WorkWeChatClient):
    """wechatpy's WeCom client with a configurable base URL and a shared token."""

    TOKEN_PATH = "gettoken"

    def __init__(self, corp_id: str, secret: str, *, api_base: str, timeout: float = 5.0,
                 session: Any = None) -> None:
        super().__init__(corp_id, secret, session=session, auto_retry=False)
        self._setup(api_base, timeout)

    def _token_params(self) -> dict[str, str]:
        return {"corpid": self.corp_id, "corpsecret": self.secret}


class Courier(Protocol):
    """Sends one text message to one user, outside any webhook request."""

    def deliver(self, user_id: str, text: str) -> None: ...

    def close(self) -> None: ...


class OfficialAccountCourier:
    """Delivers through ``message/custom/send`` (customer-service text message)."""

    def __init__(self, client: OfficialAccountClient) -> None:
        self.client = client

    def deliver(self, user_id: str, text: str) -> None:
        require_json(self.client.call(self.client.message.send_text, user_id, text))

    def close(self) -> None:
        self.client.close()


class WorkCourier:
    """Delivers through WeCom ``message/send`` as the app ``agent_id``."""

    def __init__(self, client: WorkClient, agent_id: int) -> None:
        self.client = client
        self.agent_id = agent_id

    def deliver(self, user_id: str, text: str) -> None:
        require_json(self.client.call(self.client.message.send_text, self.agent_id, user_id, text))

    def close(self) -> None:
        self.client.close()


class DeliveryFailed(BotError):
    """The platform refused a late answer."""


def require_json(result: Any) -> None:
    """wechatpy hands back the raw response when a 200 is not JSON (a proxy's error page, say),
    without raising: that is no proof of delivery.

    :raise DeliveryFailed: ``result`` is not the API's JSON answer
    """
    if not isinstance(result, dict):
        status = getattr(result, "status_code", "?")
        raise DeliveryFailed(f"the message API answered HTTP {status} without a JSON body; not delivered")


class TelegramCourier:
    """Delivers through the Bot API's ``sendMessage`` (https://core.telegram.org/bots/api#sendmessage)."""

    def __init__(self, token: str, *, api_base: str, timeout: float = 5.0) -> None:
        self._url = f"{api_base.rstrip('/')}/bot{token}/sendMessage"
        self._http = _TimeoutSession(timeout)

    def deliver(self, user_id: str, text: str) -> None:
        """Send ``text`` to the chat ``user_id`` (a chat id, for this courier)."""
        reply = self._http.post(self._url, json={"chat_id": int(user_id), "text": text})
        if reply.status_code != 200 or not reply.json().get("ok"):
            # The token is in the URL: report the status and description, never the URL.
            raise DeliveryFailed(f"sendMessage refused: HTTP {reply.status_code} {reply.text[:200]}")

    def close(self) -> None:
        self._http.close()
