"""Answer within the budget, else deliver later: the one path every webhook's question
takes (:func:`answer_in_time`). A thread pool runs the dialog, the webhook waits up to
``POLICYBOT_ANSWER_BUDGET_S``, and an answer that misses it goes out through the
platform's message API (a courier of :mod:`bot.platforms`).

WeChat gives a passive reply 5 s and then retries; replying ``success`` stops the
retries, and the answer follows as a customer-service message. A memo in the shared
store records the hand-over, so a retry served by another worker stays quiet.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException

from bot.domain import Limit, Question
from bot.platforms import Courier, DeliveryFailed
from bot.storage import Admission

log = logging.getLogger(__name__)


class AnswerRunner:
    """Runs answers in a thread pool and waits for each up to ``budget_s``.

    Retries of one message (same key) share one computation. Once an answer has
    been handed to a courier, retries of it get no passive reply, so the user
    never sees it twice.
    """

    def __init__(self, *, budget_s: float, workers: int, remember: int = 4096) -> None:
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
                   courier: Courier | None, address: str, admission: Admission | None = None) -> str | None:
    """Ask the service within the app's answer budget; ``None`` means "reply empty now".

    A late answer goes to ``address`` through ``courier``; a memo in the shared store
    records the hand-over, so a platform retry served by another worker stays quiet
    instead of sending the answer a second time.

    :raise Refused: ``admission`` refused the message (see :meth:`bot.service.Service.ask`)
    :raise Exception: whatever the service raised within the budget
    """
    from bot.service import get_service

    storage = get_service(app).storage
    memo = f"late:{question.channel}:{dedupe_key}"
    if storage.recall(memo):
        return None

    def compute() -> str:
        with app.app_context():
            return get_service(app).ask(question, limit, dedupe_key=dedupe_key, admission=admission).text

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
    """The Flask app's one :class:`AnswerRunner`, sized by the answer budget and workers settings."""
    from bot.config import settings_of

    with _app_lock:
        if RUNNER not in app.extensions:
            settings = settings_of(app)
            app.extensions[RUNNER] = AnswerRunner(budget_s=settings.answer_budget_s,
                                                  workers=settings.answer_workers)
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
