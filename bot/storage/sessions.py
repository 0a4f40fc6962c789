"""The follow-up sessions of :class:`bot.sessions.SharedSessionMemory`: one row per user (its
salted hash) with the session as JSON, expired by age.

A message reads its user's row once and writes it once, with its answer: the write is a
compare-and-set on the time the row was read at (:meth:`SessionTable.session_write`), so two
messages of one user on two hosts never lose a change, and no lock is held between the read and
the write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from bot.storage.base import Database, Write
from bot.storage.schema import register_schema

#: A row as read: (data, at), or None when the user has none.
Row = tuple[str, float] | None
EXPIRE_EVERY_S = 60.0  # expired rows are deleted at most this often per process (reads never return them)
ATTEMPTS = 5  # compare-and-set tries before the last writer simply wins

register_schema("sessions", """
CREATE TABLE IF NOT EXISTS sessions (user TEXT PRIMARY KEY, data TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_at ON sessions (at)
""")


class SessionTable(Database):
    """The ``sessions`` table, mixed into :class:`bot.storage.Storage`."""

    _last_expire = 0.0

    def load_session(self, user: str, *, since: float) -> str | None:
        """The session data of ``user`` (a hash) if it was written at or after ``since``."""
        return live(self.session_row(user), since)

    def session_row(self, user: str, conn: sqlite3.Connection | None = None) -> Row:
        """``user``'s row as it is, expired or not: what :meth:`session_write` compares against."""
        row = (conn or self.connection()).execute("SELECT data, at FROM sessions WHERE user = ?",
                                                  (user,)).fetchone()
        return (row[0], row[1]) if row else None

    def update_session(self, user: str, change: Callable[[str | None], str], *, now: float,
                       since: float) -> str:
        """Replace ``user``'s live session data (None if none since ``since``) with ``change(data)``,
        atomically: read, and written only if the row is still as read (else read again); returns
        the new data."""
        with self.transaction(serial=False) as conn:
            for _ in range(ATTEMPTS):
                row = self.session_row(user, conn)
                data = change(live(row, since))
                if conn.execute(*_put(user, data, now, row)).fetchone() is not None:
                    break
            else:  # another message wrote it every time: the last writer wins
                conn.execute(*_put(user, data, now, None, force=True))
            self._expire(conn, since)
        return data

    def session_write(self, user: str, change: Callable[[str | None], str], *, now: float, since: float,
                      seen: Row) -> Write:
        """:meth:`update_session` from the row ``seen`` (as :meth:`session_row` gave it when the
        message began), as part of an answer's one write. If another message of the user wrote the
        row since, the change is applied again to what it wrote, right after (its own transaction)."""
        def then(written: float | None) -> None:
            if written is None:
                self.update_session(user, change, now=now, since=since)

        return Write(*_put(user, change(live(seen, since)), now, seen), then=then)

    def _expire(self, conn: sqlite3.Connection, since: float) -> None:
        # Not with every write: reads skip expired rows anyway, and the delete is a write of its own.
        now = time.monotonic()
        if now - self._last_expire >= EXPIRE_EVERY_S:
            self._last_expire = now
            conn.execute("DELETE FROM sessions WHERE at < ?", (since,))

    def forget_session(self, user: str) -> None:
        with self.transaction(serial=False) as conn:
            conn.execute("DELETE FROM sessions WHERE user = ?", (user,))

    def count_sessions(self, *, since: float) -> int:
        row = self.connection().execute("SELECT COUNT(*) FROM sessions WHERE at >= ?", (since,)).fetchone()
        return int(row[0])


def _put(user: str, data: str, now: float, seen: Row, *, force: bool = False) -> tuple[str, tuple]:
    """Write ``user``'s row if it is still as ``seen`` (None: there was none); returns its time when
    written, no row when another message wrote it first."""
    return ("INSERT INTO sessions (user, data, at) VALUES (?, ?, ?) ON CONFLICT (user) DO UPDATE SET"
            " data = excluded.data, at = excluded.at WHERE sessions.at = ? OR ? = 1 RETURNING at",
            (user, data, now, seen[1] if seen else None, int(force)))


def live(row: Row, since: float) -> str | None:
    """The data of ``row`` if it was written at or after ``since``."""
    return row[0] if row is not None and row[1] >= since else None
