"""The library and the index versions that several bot hosts share (``POLICYBOT_DATABASE_URL``):
the one owner of the ``shared_*`` tables, of the notifications that tell hosts they changed, and
of the build lease that lets one host build at a time.

- ``shared_documents``: every document of the library — its record (title and year set by the
  admin, uploaded name, SHA-256 …, as ``index.library`` writes it) and the original file.
- ``shared_versions``: every kept index version, packed (a tar of its folder) with the pack's
  SHA-256 and a summary of its manifest.
- ``shared_current``: where the served version pointer moved, newest last; the last row is the
  version every host serves (rollback moves it back by adding a row, so the history stays).

Originals and packs are ``bytea`` columns: an education bureau's library is a few hundred files
and a version some megabytes, far under PostgreSQL's 1 GB per value, and one engine to back up
and replicate beats a second store for files. Hosts keep their own copy in ``POLICYBOT_DATA``
(:mod:`bot.replica`); on SQLite (one machine) these tables exist but stay empty.

A change is announced with ``NOTIFY`` on :data:`CHANNEL`, sent when its transaction commits;
:class:`Listener` waits for one on a dedicated connection. :class:`BuildLease` holds a
session-level advisory lock on a dedicated connection while a host builds: if the host dies,
PostgreSQL ends the session and the lock goes with it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from bot.errors import BotError
from bot.storage.schema import register_schema

if TYPE_CHECKING:
    import psycopg

    from bot.storage.pg import PgStorage

CHANNEL = "policybot_shared"

register_schema("shared", """
CREATE TABLE IF NOT EXISTS shared_documents (
    doc_id    TEXT PRIMARY KEY,
    record    TEXT NOT NULL,      -- JSON: the library's record.json
    original  BLOB NOT NULL,      -- the file as uploaded
    sha256    TEXT NOT NULL,      -- of original (also in record)
    updated   REAL NOT NULL       -- unix time
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shared_versions (
    version   TEXT PRIMARY KEY,
    pack      BLOB NOT NULL,      -- tar of the version's folder
    sha256    TEXT NOT NULL,      -- of pack
    size      INTEGER NOT NULL,   -- bytes of pack
    summary   TEXT NOT NULL,      -- JSON: created, counts and documents of its manifest
    stored    REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shared_current (
    seq       INTEGER PRIMARY KEY,
    version   TEXT NOT NULL,
    reason    TEXT NOT NULL,      -- build | rollback | adopt
    moved     REAL NOT NULL
);
""")


class SharedLibrary:
    """The shared tables of ``db`` (a :class:`~bot.storage.pg.PgStorage`); any thread may use it."""

    def __init__(self, db: PgStorage) -> None:
        self.db = db

    # -- documents ------------------------------------------------------------------------------

    def documents(self) -> dict[str, dict]:
        """The record of every document, by id."""
        rows = self.db.connection().execute("SELECT doc_id, record FROM shared_documents").fetchall()
        return {doc_id: json.loads(record) for doc_id, record in rows}

    def original(self, doc_id: str) -> tuple[dict, bytes] | None:
        """The record and original file of ``doc_id``, or None when it was removed meanwhile."""
        row = self.db.connection().execute("SELECT record, original FROM shared_documents WHERE doc_id = ?",
                                           (doc_id,)).fetchone()
        return (json.loads(row[0]), bytes(row[1])) if row else None

    def put_document(self, record: dict, original: bytes) -> None:
        """Add ``record``'s document, or replace the one with its id, and tell the hosts."""
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO shared_documents (doc_id, record, original, sha256, updated)"
                         " VALUES (?, ?, ?, ?, ?)", (record["doc_id"], json.dumps(record, ensure_ascii=False),
                                                     original, record["sha256"], time.time()))
            _notify(conn, "documents")

    def remove_document(self, doc_id: str) -> bool:
        """Take ``doc_id`` out and tell the hosts; False when it was not there."""
        with self.db.transaction() as conn:
            removed = conn.execute("DELETE FROM shared_documents WHERE doc_id = ?", (doc_id,)).rowcount
            _notify(conn, "documents")
        return bool(removed)

    # -- index versions -------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """The stored versions, oldest first (names sort in build order)."""
        rows = self.db.connection().execute("SELECT version FROM shared_versions ORDER BY version").fetchall()
        return [row[0] for row in rows]

    def pack(self, version: str) -> tuple[bytes, str] | None:
        """The pack of ``version`` and its recorded SHA-256, or None when it is not stored."""
        row = self.db.connection().execute("SELECT pack, sha256 FROM shared_versions WHERE version = ?",
                                           (version,)).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    def put_version(self, version: str, pack: bytes, sha256: str, summary: dict[str, Any], *, keep: int) -> None:
        """Store ``version``'s pack (not yet served: :meth:`move_current` does that), then drop all
        but the newest ``keep`` packs, never the served one."""
        conn = self.db.connection()
        # One statement outside the write lock: a pack of megabytes must not hold up every host's
        # answers while it travels; no other host writes this version's row.
        conn.execute("INSERT OR REPLACE INTO shared_versions (version, pack, sha256, size, summary, stored)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (version, pack, sha256, len(pack),
                                                    json.dumps(summary, ensure_ascii=False), time.time()))
        conn.execute("DELETE FROM shared_versions WHERE version NOT IN (SELECT version FROM shared_versions"
                     " ORDER BY version DESC LIMIT ?) AND version <> ? AND version <> COALESCE((SELECT version"
                     " FROM shared_current ORDER BY seq DESC LIMIT 1), '')", (max(1, keep), version))

    def current(self) -> str | None:
        """The version every host should serve; None before the first publish."""
        row = self.db.connection().execute("SELECT version FROM shared_current ORDER BY seq DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def move_current(self, version: str, reason: str) -> None:
        """Serve ``version`` on every host: the pointer moves and the hosts are told, in one transaction.

        :raise LookupError: its pack is not stored (the pointer only ever names a complete pack).
        """
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM shared_versions WHERE version = ?", (version,)).fetchone() is None:
                raise LookupError(f"index version {version!r} is not stored in the shared database")
            conn.execute("INSERT INTO shared_current (version, reason, moved) VALUES (?, ?, ?)",
                         (version, reason, time.time()))
            _notify(conn, "index")

    def history(self, limit: int = 20) -> list[tuple[str, str, float]]:
        """(version, reason, unix time) of the pointer's last moves, newest first."""
        return [tuple(row) for row in self.db.connection().execute(
            "SELECT version, reason, moved FROM shared_current ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()]


def _notify(conn: Any, what: str) -> None:
    # Delivered when the transaction commits, never for one rolled back.
    conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, what))


class Listener:
    """A dedicated connection that listens on :data:`CHANNEL` (psycopg's ``notifies()`` on an
    autocommit connection: the notifications arrive between transactions)."""

    def __init__(self, url: str) -> None:
        from bot.storage.pg import connect

        self.conn: psycopg.Connection = connect(url)
        try:
            self.conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            self.conn.close()  # a standby refuses LISTEN: retried every second, so never leak the connection
            raise

    def wait(self, timeout: float) -> bool:
        """Whether a change was announced within ``timeout`` seconds.

        :raise psycopg.OperationalError: the connection broke (make a new listener).
        """
        return any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        self.conn.close()


class LeaseLost(BotError):
    """The build lease ended while its holder was building (its connection broke)."""


class BuildLease:
    """The right to build the shared index: a session-level advisory lock on a connection of its own,
    so it outlives any transaction and ends with the host (PostgreSQL ends a dead host's session)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    @classmethod
    def take(cls, url: str) -> BuildLease | None:
        """The lease, or None while another host (or process) holds it."""
        from bot.storage.pg import BUILD_LOCK, connect

        conn = connect(url)
        try:
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (BUILD_LOCK,)).fetchone()[0]:
                return cls(conn)
        except BaseException:
            conn.close()
            raise
        conn.close()
        return None

    def check(self) -> None:
        """:raise LeaseLost: the lease's connection broke (the database restarted), so another host may
        be building already: this build must not publish."""
        from bot.storage.pg import BUILD_LOCK

        try:
            held = self.conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                                     " AND pid = pg_backend_pid() AND objid::bigint = %s",
                                     (BUILD_LOCK & 0xFFFFFFFF,)).fetchone()[0]
        except Exception as exc:  # psycopg's OperationalError, without importing psycopg here
            raise LeaseLost(f"the build lock was lost ({type(exc).__name__}); the build was not published") from None
        if not held:
            raise LeaseLost("the build lock was lost; the build was not published")

    def release(self) -> None:
        """Let another host build (closing the session would too; unlocking first says so at once)."""
        from bot.storage.pg import BUILD_LOCK

        try:
            if not self.conn.closed and not self.conn.broken:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (BUILD_LOCK,))
        finally:
            self.conn.close()
