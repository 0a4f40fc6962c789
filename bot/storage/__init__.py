"""The bot's SQLite database, shared by every gunicorn worker: the question log,
the answers of deduplicated messages (a platform retry gets the stored reply), and
small memos for replies delivered later.

One file, ``<POLICYBOT_DATA>/policybot.sqlite3``, in WAL mode so readers never block
the writer; a busy timeout so workers queue instead of failing; one connection per
thread (sqlite3 connections must not be shared between threads mid-transaction).
User ids and keys are stored only as an HMAC-SHA256 under the log salt
(``POLICYBOT_LOG_SALT``, else a random salt kept in the database): a platform's
message key may contain the sender's raw id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILENAME = "policybot.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
KEEP_S = 3 * 24 * 3600  # answers and memos are kept this long: platform retries come within hours at most
PRUNE_EVERY_S = 3600.0
LOG_PRUNE_EVERY_S = 86400.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id          INTEGER PRIMARY KEY,
    asked_at    REAL NOT NULL,      -- unix time
    channel     TEXT NOT NULL,
    user_hash   TEXT NOT NULL,      -- HMAC-SHA256(log salt, user id); never the raw id
    question    TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- the dialog path: answer, abstain, help, toc, item, ...
    abstained   INTEGER NOT NULL,
    top_doc     TEXT,
    top_item    TEXT,               -- the top hit's locator
    confidence  REAL NOT NULL,
    latency_ms  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS questions_abstained ON questions (abstained, asked_at);
CREATE TABLE IF NOT EXISTS answers (
    key         TEXT PRIMARY KEY,   -- hashed dedupe key
    state       TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    answer      TEXT,               -- JSON, once done
    claimed_at  REAL NOT NULL,
    owner       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memos (
    key         TEXT PRIMARY KEY,   -- hashed
    value       TEXT NOT NULL,
    stored_at   REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (   -- signed (timestamp, nonce) pairs seen by the webhooks
    channel     TEXT NOT NULL,
    timestamp   TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    digest      TEXT NOT NULL,      -- SHA-256 of the body the pair signed
    seen_at     REAL NOT NULL,
    PRIMARY KEY (channel, timestamp, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rates (    -- requests per client in the current rate window
    key         TEXT PRIMARY KEY,   -- hashed client (address or user)
    window      INTEGER NOT NULL,   -- unix time the window started
    count       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (user TEXT PRIMARY KEY, data TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_at ON sessions (at);
"""
NONCE_KEEP_S = 3600  # timestamps older than the webhooks' freshness window (minutes) are refused anyway


@dataclass(frozen=True)
class LogEntry:
    """One answered message, as logged: no raw user id, only its salted hash."""

    channel: str
    user_hash: str
    question: str
    kind: str
    abstained: bool
    top_doc: str | None
    top_item: str | None
    confidence: float
    latency_ms: float
    asked_at: float = 0.0


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`Storage.claim`: ours to compute, done (with the answer), or pending elsewhere."""

    state: str  # "claimed" | "done" | "pending"
    answer: str | None = None


@dataclass(frozen=True)
class Unanswered:
    """A question the bot abstained on, with how often and when it was last asked."""

    question: str
    count: int
    last_asked: float


class Storage:
    """The SQLite database at ``path``; safe to share between threads and processes."""

    def __init__(self, path: Path, *, salt: str | None = None, log_days: int | None = None) -> None:
        self.path = Path(path)
        self.log_days = log_days  # questions older than this are deleted (None: kept for ever)
        self._last_log_prune = 0.0
        self._salt = salt.encode("utf-8") if salt else None
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._abandoned: list[sqlite3.Connection] = []
        self._salt_stored = False
        self._last_prune = 0.0

    # -- connections ------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema ensured) on first use, and again
        whenever the file was deleted or replaced under it."""
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
        _initialise(conn)  # every time: the file may be new (deleted by hand) even if this process is not
        if self._salt is not None and self._salt_stored:
            # Keep user hashes stable across a deleted database: put back the salt in use.
            conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('log_salt', ?)",
                         (self._salt.decode("utf-8"),))
        with self._lock:
            self._connections.append(conn)
        return conn

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction that takes the lock up front, so two workers never both read-then-write."""
        return immediate_transaction(self.connection())

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

    # -- question log -----------------------------------------------------------------------

    def log_question(self, entry: LogEntry, *, conn: sqlite3.Connection | None = None) -> None:
        """Append one row to the question log (and, once a day, delete rows past ``log_days``)."""
        self.prune_log()
        (conn or self.connection()).execute(
            "INSERT INTO questions (asked_at, channel, user_hash, question, kind, abstained, top_doc,"
            " top_item, confidence, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.asked_at or time.time(), entry.channel, entry.user_hash, entry.question, entry.kind,
             int(entry.abstained), entry.top_doc, entry.top_item, entry.confidence, entry.latency_ms),
        )

    def prune_log(self, *, now: float | None = None, force: bool = False) -> int:
        """Delete questions older than ``log_days``, at most once a day unless ``force``; returns how many."""
        now = time.time() if now is None else now
        if self.log_days is None or (not force and now - self._last_log_prune < LOG_PRUNE_EVERY_S):
            return 0
        self._last_log_prune = now
        deleted = self.connection().execute("DELETE FROM questions WHERE asked_at < ?",
                                            (now - self.log_days * 86400,)).rowcount
        if deleted:
            log.info("question log: deleted %d question(s) older than %d days", deleted, self.log_days)
        return deleted

    def questions(self) -> list[LogEntry]:
        """The whole log, oldest first (for tests and exports)."""
        rows = self.connection().execute(
            "SELECT channel, user_hash, question, kind, abstained, top_doc, top_item, confidence,"
            " latency_ms, asked_at FROM questions ORDER BY id").fetchall()
        return [LogEntry(r[0], r[1], r[2], r[3], bool(r[4]), *r[5:]) for r in rows]

    def unanswered(self, *, since: float = 0.0, limit: int = 20) -> list[Unanswered]:
        """Questions abstained on since ``since`` (unix time), most frequent first."""
        rows = self.connection().execute(
            "SELECT question, COUNT(*) AS n, MAX(asked_at) AS last FROM questions"
            " WHERE abstained = 1 AND asked_at >= ? GROUP BY question"
            " ORDER BY n DESC, last DESC, question LIMIT ?", (since, limit)).fetchall()
        return [Unanswered(*row) for row in rows]

    # -- deduplicated answers ---------------------------------------------------------------

    def claim(self, key: str, *, stale_after_s: float) -> Claim:
        """Take ``key`` for computing, or report its stored answer or that it is being computed.

        A pending claim older than ``stale_after_s`` (its worker died) can be taken over.
        """
        hashed, now = self.hash(key), time.time()
        with self.transaction() as conn:
            self._prune(conn, now)
            row = conn.execute("SELECT state, answer, claimed_at FROM answers WHERE key = ?",
                               (hashed,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO answers (key, state, claimed_at, owner)"
                             " VALUES (?, 'pending', ?, ?)", (hashed, now, self.owner))
                return Claim("claimed")
            state, answer, claimed_at = row
            if state == "done":
                return Claim("done", answer)
            if now - claimed_at > stale_after_s:
                log.warning("answer for a message pending %.0f s: its worker is gone; computing again",
                            now - claimed_at)
                conn.execute("UPDATE answers SET claimed_at = ?, owner = ? WHERE key = ?",
                             (now, self.owner, hashed))
                return Claim("claimed")
            return Claim("pending")

    def finish(self, key: str, answer: str, entry: LogEntry) -> None:
        """Store the answer of a claimed key and log the question, in one transaction."""
        hashed = self.hash(key)  # before the transaction: hashing may itself write the salt
        with self.transaction() as conn:
            conn.execute("UPDATE answers SET state = 'done', answer = ? WHERE key = ?", (answer, hashed))
            self.log_question(entry, conn=conn)

    def release(self, key: str) -> None:
        """Give up a claim (computing failed) so a retry may try again."""
        hashed = self.hash(key)
        with self.transaction() as conn:
            conn.execute("DELETE FROM answers WHERE key = ? AND state = 'pending'", (hashed,))

    # -- replay guard -----------------------------------------------------------------------

    def claim_nonce(self, channel: str, timestamp: str, nonce: str, digest: str) -> bool:
        """Record that (``channel``, ``timestamp``, ``nonce``) signed the body ``digest``.

        False when the pair already signed another body (a replay): one INSERT under the
        table's unique key decides, so two workers racing with two bodies never both pass.
        """
        with self.transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO nonces (channel, timestamp, nonce, digest, seen_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING", (channel, timestamp, nonce, digest, time.time())).rowcount
            if inserted:
                return True
            row = conn.execute("SELECT digest FROM nonces WHERE channel = ? AND timestamp = ? AND nonce = ?",
                               (channel, timestamp, nonce)).fetchone()
        return row is not None and row[0] == digest

    # -- rate limits --------------------------------------------------------------------------

    def count_request(self, client: str, *, window_s: int) -> int:
        """Count one request of ``client`` (an address or a user) and return how many it made in
        the current ``window_s`` window, across all workers."""
        window = int(time.time()) // window_s * window_s
        hashed = self.hash(f"rate:{client}")  # before the transaction: hashing may itself write the salt
        with self.transaction() as conn:
            return conn.execute(
                "INSERT INTO rates (key, window, count) VALUES (?, ?, 1) ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN window = excluded.window THEN count + 1 ELSE 1 END, window = excluded.window"
                " RETURNING count", (hashed, window)).fetchone()[0]

    # -- memos ------------------------------------------------------------------------------

    def remember(self, key: str, reply: str) -> None:
        """Keep ``reply`` under ``key`` for a few days (e.g. an answer to deliver later)."""
        hashed = self.hash(key)
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO memos (key, value, stored_at) VALUES (?, ?, ?)",
                         (hashed, reply, time.time()))

    def recall(self, key: str) -> str | None:
        """The reply remembered under ``key``, or None."""
        row = self.connection().execute("SELECT value FROM memos WHERE key = ?", (self.hash(key),)).fetchone()
        return row[0] if row else None

    def _prune(self, conn: sqlite3.Connection, now: float) -> None:
        if now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        conn.execute("DELETE FROM answers WHERE claimed_at < ?", (now - KEEP_S,))
        conn.execute("DELETE FROM memos WHERE stored_at < ?", (now - KEEP_S,))
        conn.execute("DELETE FROM nonces WHERE seen_at < ?", (now - NONCE_KEEP_S,))
        conn.execute("DELETE FROM rates WHERE window < ?", (now - 3600,))  # windows are a minute or so


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _initialise(conn: sqlite3.Connection) -> None:
    from bot.storage import curation  # its tables share the file (and this module creates them)

    initialise_database(conn, SCHEMA + curation.SCHEMA, version=SCHEMA_VERSION, name="question log")


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


def initialise_database(conn: sqlite3.Connection, schema: str, *, version: int | None = None,
                        name: str = "database") -> None:
    """Switch the file to WAL and create the schema, retrying while another process does the same.

    Changing the journal mode needs the database to itself, and SQLite reports that
    contention at once instead of waiting out the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.executescript(schema)
            if version is not None:
                conn.execute(f"PRAGMA user_version={version}")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        else:
            if mode != "wal":
                log.warning("%s: journal mode is %s, not WAL (a network filesystem?)", name, mode)
            return
