"""The follow-up sessions of :class:`bot.sessions.SharedSessionMemory`: one row per user (its
salted hash) with the session as JSON, expired by age."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from bot.storage.base import Database
from bot.storage.schema import register_schema

register_schema("sessions", """
CREATE TABLE IF NOT EXISTS sessions (user TEXT PRIMARY KEY, data TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_at ON sessions (at)
""")


class SessionTable(Database):
    """The ``sessions`` table, mixed into :class:`bot.storage.Storage`."""

    def load_session(self, user: str, *, since: float) -> str | None:
        """The session data of ``user`` (a hash) if it was written at or after ``since``."""
        row = self.connection().execute("SELECT data FROM sessions WHERE user = ? AND at >= ?",
                                        (user, since)).fetchone()
        return row[0] if row else None

    def update_session(self, user: str, change: Callable[[str | None], str], *, now: float,
                       since: float) -> str:
        """Replace ``user``'s live session data (None if none since ``since``) with ``change(data)``,
        atomically, and drop sessions older than ``since``; returns the new data."""
        with self.transaction() as conn:
            return self.write_session(conn, user, change, now=now, since=since)

    def write_session(self, conn: sqlite3.Connection, user: str, change: Callable[[str | None], str], *,
                      now: float, since: float) -> str:
        """:meth:`update_session` inside the caller's transaction ``conn``."""
        row = conn.execute("SELECT data FROM sessions WHERE user = ? AND at >= ?", (user, since)).fetchone()
        data = change(row[0] if row else None)
        conn.execute("INSERT OR REPLACE INTO sessions (user, data, at) VALUES (?, ?, ?)", (user, data, now))
        conn.execute("DELETE FROM sessions WHERE at < ?", (since,))
        return data

    def forget_session(self, user: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE user = ?", (user,))

    def count_sessions(self, *, since: float) -> int:
        row = self.connection().execute("SELECT COUNT(*) FROM sessions WHERE at >= ?", (since,)).fetchone()
        return int(row[0])
