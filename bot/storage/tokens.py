"""Platform access tokens shared by every worker, as wechatpy's session storage
(:class:`wechatpy.session.SessionStorage`: ``get``, ``set`` with a TTL, ``delete``) over
a table of the bot's database.

WeChat and WeCom invalidate a token when a new one is fetched, so one fetch must serve all
gunicorn workers: the token lives here, not in each client. A value is kept until
:data:`REFRESH_MARGIN_S` before it expires (wechatpy refreshes that early too, but only in
the process that fetched it), and a lease lets one worker fetch while the others wait for
its token instead of fetching their own.
"""

from __future__ import annotations

import json
import time
from typing import Any

from wechatpy.session import SessionStorage

from bot.storage.base import Database
from bot.storage.schema import register_schema

REFRESH_MARGIN_S = 60.0

register_schema("tokens", """
CREATE TABLE IF NOT EXISTS tokens (
    key         TEXT PRIMARY KEY,   -- e.g. "<appid>_access_token"
    value       TEXT,               -- JSON; NULL while only a fetch lease is held
    expires_at  REAL NOT NULL,      -- unix time the value stops being served
    lease_until REAL NOT NULL DEFAULT 0  -- a worker is fetching a new value until then
) WITHOUT ROWID
""")


class TokenStorage(SessionStorage):
    """wechatpy's session storage on the ``tokens`` table of ``db``."""

    def __init__(self, db: Database, *, prefix: str = "wechatpy") -> None:
        self.db = db
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.connection().execute(
            "SELECT value FROM tokens WHERE key = ? AND value IS NOT NULL AND expires_at > ?",
            (self._key(key), time.time())).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if value is None:
            return
        expires = time.time() + max(float(ttl) - REFRESH_MARGIN_S, 1.0) if ttl else float("inf")
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO tokens (key, value, expires_at, lease_until) VALUES (?, ?, ?, 0)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                         " expires_at = excluded.expires_at, lease_until = 0",
                         (self._key(key), json.dumps(value), expires))

    def delete(self, key: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM tokens WHERE key = ?", (self._key(key),))

    def lease(self, key: str, seconds: float) -> bool:
        """Take the right to fetch ``key`` for ``seconds``; False while another worker holds it."""
        now = time.time()
        with self.db.transaction() as conn:
            return bool(conn.execute(
                "INSERT INTO tokens (key, value, expires_at, lease_until) VALUES (?, NULL, 0, ?)"
                " ON CONFLICT (key) DO UPDATE SET lease_until = excluded.lease_until"
                " WHERE tokens.lease_until <= ?", (self._key(key), now + seconds, now)).rowcount)

    def release(self, key: str) -> None:
        """Give the lease back (the fetch failed): the next caller may try at once."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE tokens SET lease_until = 0 WHERE key = ?", (self._key(key),))
