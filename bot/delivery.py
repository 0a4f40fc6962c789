"""Answers that miss the passive-reply window: a thread pool runs the dialog, the
webhook waits up to the answer budget, and a late answer goes out through the
platform's message API with one shared, cached access token.

WeChat gives a passive reply 5 s and then retries; replying ``success`` stops the
retries, and the answer follows as a customer-service message
(https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html;
WeCom: https://developer.work.weixin.qq.com/document/path/90236). Both need an access token
(https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html,
https://developer.work.weixin.qq.com/document/path/91039): fetching a new one invalidates
the old, so each client fetches under a lock, caches it until it expires, and refreshes
once when the API calls it stale. The clients are wechatpy's, pointed at a configurable
API base URL so tests can run them against a fake on loopback.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.enterprise import WeChatClient as WorkWeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.domain import Limit, Question
from bot.errors import BotError

log = logging.getLogger(__name__)

#: errcodes meaning "this access token is no good": invalid credential, invalid, expired.
STALE_TOKEN_CODES = frozenset({40001, 40014, 42001})
WECHAT_API_BASE = "https://api.weixin.qq.com/cgi-bin/"
WECOM_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
TELEGRAM_API_BASE = "https://api.telegram.org"
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
    invalidate each other's.
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
            return super().access_token  # type: ignore[misc]

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
            # Another thread may have refreshed already; a second fetch would revoke its token.
            if self.session.get(self.access_token_key) == stale:  # type: ignore[attr-defined]
                self.fetch_access_token()

    def close(self) -> None:
        self._http.close()


class OfficialAccountClient(_SharedTokenMixin, WeChatClient):
    """wechatpy's Official Account client with a configurable base URL and a shared token."""

    TOKEN_PATH = "token"

    def __init__(self, appid: str, secret: str, *, api_base: str = WECHAT_API_BASE,
                 timeout: float = 5.0) -> None:
        super().__init__(appid, secret, auto_retry=False)
        self._setup(api_base, timeout)

    def _token_params(self) -> dict[str, str]:
        return {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}


class WorkClient(_SharedTokenMixin, WorkWeChatClient):
    """wechatpy's WeCom client with a configurable base URL and a shared token."""

    TOKEN_PATH = "gettoken"

    def __init__(self, corp_id: str, secret: str, *, api_base: str = WECOM_API_BASE,
                 timeout: float = 5.0) -> None:
        super().__init__(corp_id, secret, auto_retry=False)
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

    def __init__(self, token: str, *, api_base: str = TELEGRAM_API_BASE, timeout: float = 5.0) -> None:
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


class AnswerRunner:
    """Runs answers in a thread pool and waits for each up to ``budget_s``.

    Retries of one message (same key) share one computation. Once an answer has
    been handed to a courier, retries of it get no passive reply, so the user
    never sees it twice.
    """

    def __init__(self, *, budget_s: float, workers: int = 8, remember: int = 4096) -> None:
        if budget_s < 0:
            raise ValueError(f"answer budget must be >= 0 seconds, got {budget_s}")
        self.budget_s = budget_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="policybot-answer")
        # Re-entrant: add_done_callback runs the callback at once if the future is done.
        self._lock = threading.RLock()
        self._inflight: dict[str, Future[str]] = {}
        self._late: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def answer(self, key: str, compute: Callable[[], str], late: Callable[[str], None] | None) -> str | None:
        """Return the answer if ready within the budget; else ``None`` and ``late(answer)`` follows.

        With ``late=None`` (no courier) a missed budget just returns ``None``; the
        computation goes on, and a platform retry of the same key can still pick it up.

        :raise Exception: whatever ``compute`` raised, if it failed within the budget
        """
        with self._lock:
            if key in self._late:
                return None
            future = self._inflight.get(key)
            if future is None:
                future = self._pool.submit(compute)
                self._inflight[key] = future
                future.add_done_callback(lambda _f: self._forget(key))
        try:
            text = future.result(timeout=self.budget_s)
        except TimeoutError:
            if late is not None:
                self._hand_over(key, future, late)
            return None
        with self._lock:
            # A retry that joined a computation already handed to a courier stays quiet.
            return None if key in self._late else text

    def _forget(self, key: str) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _hand_over(self, key: str, future: Future[str], late: Callable[[str], None]) -> None:
        with self._lock:
            if key in self._late:
                return  # an earlier attempt of this message already owns the delivery
            self._late[key] = None
            while len(self._late) > self._remember:
                self._late.popitem(last=False)
        future.add_done_callback(lambda f: _deliver(key, f, late))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


_app_lock = threading.Lock()
RUNNER, COURIERS = "policybot.runner", "policybot.couriers"


def answer_in_time(app: Any, question: Question, limit: Limit, *, dedupe_key: str,
                   courier: Courier | None, address: str) -> str | None:
    """Ask the service within the app's answer budget; ``None`` means "reply empty now".

    A late answer goes to ``address`` through ``courier``; a memo in the shared store
    records the hand-over, so a platform retry served by another worker stays quiet
    instead of sending the answer a second time.

    :raise Exception: whatever the service raised within the budget
    """
    from bot.service import get_service

    storage = get_service(app).storage
    memo = f"late:{question.channel}:{dedupe_key}"
    if storage.recall(memo):
        return None

    def compute() -> str:
        with app.app_context():
            return get_service(app).ask(question, limit, dedupe_key=dedupe_key).text

    if courier is None:
        # With no way to send a late answer, replying "success" would drop it for good. Answering
        # late is better: the platform retries a request that times out, and the retry gets the
        # reply from the dedupe store.
        return compute()
    text = runner_for(app).answer(f"{question.channel}:{dedupe_key}", compute,
                                  lambda text: courier.deliver(address, text))
    if text is None:
        storage.remember(memo, "handed to the courier")
    return text


def runner_for(app: Any) -> AnswerRunner:
    """The Flask app's one :class:`AnswerRunner`, sized by ``ANSWER_BUDGET_S`` and ``ANSWER_WORKERS``."""
    with _app_lock:
        if RUNNER not in app.extensions:
            app.extensions[RUNNER] = AnswerRunner(
                budget_s=float(app.config.get("ANSWER_BUDGET_S", 4.0)),
                workers=int(app.config.get("ANSWER_WORKERS", 8)),
            )
        return app.extensions[RUNNER]


def courier_for(app: Any, channel: str, build: Callable[[], Courier | None]) -> Courier | None:
    """The app's one courier for ``channel`` (one client, so one cached token), built on first use."""
    with _app_lock:
        couriers = app.extensions.setdefault(COURIERS, {})
        if channel not in couriers:
            couriers[channel] = build()
        return couriers[channel]


def shutdown(app: Any) -> None:
    """Finish pending late answers, then close the couriers' connections (tests, worker exit)."""
    runner = app.extensions.pop(RUNNER, None)
    if runner is not None:
        runner.shutdown()
    for courier in app.extensions.pop(COURIERS, {}).values():
        if courier is not None:
            courier.close()


def _deliver(key: str, future: Future[str], late: Callable[[str], None]) -> None:
    # Runs on a pool thread after the webhook has answered: nothing can propagate.
    try:
        text = future.result()
    except Exception:
        log.exception("late answer %s failed; nothing delivered", key)
        return
    try:
        late(text)
    except (WeChatClientException, DeliveryFailed) as exc:
        log.error("late answer %s could not be delivered: %r", key, exc)
    except requests.RequestException as exc:
        # Not %r: request URLs carry the access token or the bot token.
        log.error("late answer %s could not be delivered: %s", key, type(exc).__name__)
    except Exception:
        log.exception("late answer %s could not be delivered", key)
    else:
        log.info("late answer %s delivered", key)
