"""The connection side of the bot's database: one SQLite file shared by every gunicorn
worker, one connection per thread, write transactions that take the lock up front, and
the salted hash under which user ids and keys are stored.

WAL mode so readers never block the writer; a busy timeout so workers queue instead of
failing. Within one process, write transactions also queue on a lock: SQLite's own busy
handler sleeps in steps of up to 100 ms, which under load turns a wait of microseconds
into a latency spike. User ids and keys are stored only as an HMAC-SHA256 under the log
salt (``POLICYBOT_LOG_SALT``, else a random salt kept in the database): a platform's
message key may contain the sender's raw id.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.storage.schema import BUSY_TIMEOUT_S, migrate, register_schema

log = logging.getLogger(__name__)

register_schema("meta", """
CREATE TABLE IF NOT EXISTS meta (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
) WITHOUT ROWID
""")


class Database:
    """The SQLite database at ``path``; safe to share between threads and processes."""

    def __init__(self, path: Path, *, salt: str | None = None) -> None:
        self.path = Path(path)
        self._salt = salt.encode("utf-8") if salt else None
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()  # re-entrant: hashing may write the salt
        self._connections: list[sqlite3.Connection] = []
        self._abandoned: list[sqlite3.Connection] = []
        self._salt_stored = False

    # -- connections ------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema brought up to date) on first use, and
        again whenever the file was deleted or replaced under it."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid() and self._same_file():
            return conn
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            log.warning("%s was deleted or replaced while in use; reopening it (schema recreated)", self.path)
            self._abandon(conn)
        conn = self._connect()  # a forked child must not reuse its parent's connection either
        self._local.conn, self._local.pid = conn, os.getpid()
        self._local.inode = _inode(self.path)
        return conn

    def _same_file(self) -> bool:
        # One stat per use: an operator who deletes the file gets a fresh database, not "no such table".
        return _inode(self.path) == getattr(self._local, "inode", None)

    def _abandon(self, conn: sqlite3.Connection) -> None:
        # Never closed: closing the last connection to the deleted file would make SQLite delete the
        # -wal and -shm files by name, and those names now belong to the new database.
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
            self._abandoned.append(conn)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) where they matter.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")  # per connection; safe with WAL
        migrate(conn)  # every time: the file may be new (deleted by hand) even if this process is not
        if self._salt is not None and self._salt_stored:
            # Keep user hashes stable across a deleted database: put back the salt in use.
            conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('log_salt', ?)",
                         (self._salt.decode("utf-8"),))
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, serial: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front, so two workers never both read-then-write.

        ``serial=False`` says the caller needs no more than its rows' own locks: each statement is
        an upsert, or a compare-and-set, on its own key. SQLite runs it like any other; PostgreSQL
        runs such transactions side by side across hosts (see :mod:`bot.storage.pg`)."""
        conn = self.connection()
        with self._write_lock, immediate_transaction(conn):
            yield conn

    def write_together(self, writes: Sequence[Write], *, durable: bool = True) -> list[Any]:
        """Run ``writes`` as one atomic unit and give the value each returned (None: no row, or no
        ``RETURNING``), then call each one's :attr:`Write.then` with it. ``durable=False``: writes
        whose loss in a crash of the database server would be harmless need not wait for the disk
        (PostgreSQL; SQLite's WAL with ``synchronous=NORMAL`` never waits for it at a commit).

        For a message's independent writes: each an ``INSERT``, ``UPDATE`` or ``DELETE`` of its own
        table, none reading what another wrote (PostgreSQL runs them as one statement, where they
        see the same snapshot: one round trip instead of one per statement and two for the
        transaction). SQLite runs them one after the other in one transaction."""
        check_together(writes)
        values = []
        with self.transaction(serial=False) as conn:
            for write in writes:
                cursor = conn.execute(write.sql, write.params)
                values.append(first_value(cursor) if write.returns else None)
        return call_then(writes, values)

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    # -- hashing ----------------------------------------------------------------------------

    def hash(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under the log salt, hex: how user ids and keys are stored."""
        if self._salt is None:
            self._salt = self._stored_salt().encode("utf-8")
            self._salt_stored = True
        return hmac.new(self._salt, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def _stored_salt(self) -> str:
        # Created once per database, so every worker (and every restart) hashes a user the same way.
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('log_salt', ?)",
                         (secrets.token_hex(32),))
            return conn.execute("SELECT value FROM meta WHERE name = 'log_salt'").fetchone()[0]


@dataclass(frozen=True)
class Write:
    """One statement of :meth:`Database.write_together`: SQLite's SQL, its parameters, and what to do
    with the value it returned once all are written (``then``)."""

    sql: str
    params: tuple = ()
    then: Callable[[Any], object] | None = None

    @property
    def returns(self) -> bool:
        return returning(self.sql) is not None


@functools.lru_cache(maxsize=256)  # the statements are constants: parsed once, not per message
def returning(sql: str) -> str | None:
    """The one column ``sql`` returns (``… RETURNING x`` at its end), else None."""
    match = _RETURNING.search(sql)
    return match.group(1) if match else None


@functools.lru_cache(maxsize=256)
def _written_table(sql: str) -> str | None:
    match = _WRITE_TABLE.match(sql)
    return match.group(1).lower() if match else None


_RETURNING = re.compile(r"\bRETURNING\s+(\w+)\s*$", re.I)
_WRITE_TABLE = re.compile(r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.I)


def check_together(writes: Sequence[Write]) -> None:
    """Refuse what :meth:`Database.write_together` cannot run as one statement."""
    names = [name for name in map(_written_table, (w.sql for w in writes)) if name]
    if len(names) != len(writes) or len(set(names)) != len(names):
        raise ValueError("write_together takes INSERT, UPDATE or DELETE statements of different tables")


def first_value(cursor: Any) -> Any:
    """The first column of a cursor's first row, or None."""
    row = cursor.fetchone()
    return row[0] if row else None


def call_then(writes: Sequence[Write], values: list[Any]) -> list[Any]:
    """Call each write's ``then`` with its value; the values."""
    for write, value in zip(writes, values, strict=True):
        if write.then is not None:
            write.then(value)
    return values


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error) on an autocommit connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
