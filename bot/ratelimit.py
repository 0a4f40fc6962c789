"""A per-client request limit shared by all workers: ``POLICYBOT_RATE_PER_MINUTE`` questions
per minute per client address on ``/api/ask`` and per user on the webhooks (0: no limit).
Loopback addresses are not limited: behind a reverse proxy on the same host every client
would share one; set ``POLICYBOT_PROXIES`` so that the client's own address is used.

Counted in the bot's SQLite store (:meth:`bot.storage.Storage.count_request`), so it holds
however many gunicorn workers there are. Over the limit the web API answers 429 with
``Retry-After``; a webhook user gets :data:`SLOW_DOWN` instead of an answer.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

WINDOW_S = 60
SLOW_DOWN = "您提问太频繁了，请一分钟后再问。"


def allowed(app: Any, client: str, *, address: str | None = None) -> bool:
    """Count this request of ``client`` ("web:<address>", "wechat:<openid>") and say whether it
    is within the app's limit (a loopback ``address`` always is)."""
    from bot.config import settings_of
    from bot.service import get_service

    limit = settings_of(app).rate_per_minute
    if limit <= 0 or (address is not None and _loopback(address)):
        return True
    return get_service(app).storage.count_request(client, window_s=WINDOW_S) <= limit


def rate_for(app: Any, client: str) -> tuple[str, int, int] | None:
    """The rate count of a webhook user's message as ``(client, window_s, limit)``, to be decided
    with the message's claim (:class:`bot.storage.Admission`); None when there is no limit."""
    from bot.config import settings_of

    limit = settings_of(app).rate_per_minute
    return (client, WINDOW_S, limit) if limit > 0 else None


def retry_after() -> int:
    """Seconds until the current window ends."""
    return WINDOW_S - int(time.time()) % WINDOW_S or WINDOW_S


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
