"""Once-per-message state shared by the workers: the answers of deduplicated messages (a
platform retry gets the stored reply), memos (a late answer was handed to a courier), the
signed (timestamp, nonce) pairs the webhooks have seen, and the request counts of the rate
limit. Every row is short-lived and pruned as new claims are made."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

from bot.storage.base import Database
from bot.storage.schema import register_schema

log = logging.getLogger(__name__)

KEEP_S = 3 * 24 * 3600  # answers and memos are kept this long: platform retries come within hours at most
PRUNE_EVERY_S = 3600.0
NONCE_KEEP_S = 3600  # timestamps older than the webhooks' freshness window (minutes) are refused anyway

register_schema("dedup", """
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
) WITHOUT ROWID
""")


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`Dedup.claim`: ours to compute, done (with the answer), or pending elsewhere."""

    state: str  # "claimed" | "done" | "pending" | "replayed" | "limited" (refused by the admission)
    answer: str | None = None


@dataclass
class Admission:
    """What a webhook message must pass before it is answered, decided in the same transaction that
    claims it (one write instead of three): the signed pair that carried it, as (channel, timestamp,
    nonce, body digest), and its rate count, as (client, window_s, limit). ``nonce_ok`` is set once
    the pair is decided."""

    nonce: tuple[str, str, str, str] | None = None
    rate: tuple[str, int, int] | None = None
    nonce_ok: bool | None = None


class Dedup(Database):
    """The ``answers``, ``memos``, ``nonces`` and ``rates`` tables, mixed into :class:`bot.storage.Storage`."""

    _last_prune = 0.0

    def claim(self, key: str, *, stale_after_s: float, admission: Admission | None = None) -> Claim:
        """Take ``key`` for computing, or report its stored answer or that it is being computed;
        with ``admission``, first its signed pair (state ``replayed`` if it signed another body) and
        its rate count (``limited`` over the limit), in the same transaction.

        A pending claim older than ``stale_after_s`` (its worker died) can be taken over.
        """
        hashed, now = self.hash(key), time.time()
        rate_key = self.hash(f"rate:{admission.rate[0]}") if admission and admission.rate else ""
        with self.transaction() as conn:
            self._prune(conn, now)
            refused = self._admit(conn, admission, rate_key) if admission else None
            if refused:
                return Claim(refused)
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

    def _admit(self, conn: sqlite3.Connection, admission: Admission, rate_key: str) -> str | None:
        if admission.nonce is not None:
            admission.nonce_ok = self._claim_nonce(conn, *admission.nonce)
            if not admission.nonce_ok:
                return "replayed"
        if admission.rate is not None:
            _, window_s, limit = admission.rate
            if self._count(conn, rate_key, window_s) > limit:
                return "limited"
        return None

    def store_answer(self, conn: sqlite3.Connection, key: str, answer: str) -> None:
        """Mark the claimed ``key`` done with ``answer``, inside the caller's transaction ``conn``."""
        conn.execute("UPDATE answers SET state = 'done', answer = ? WHERE key = ?", (answer, self.hash(key)))

    def release(self, key: str) -> None:
        """Give up a claim (computing failed) so a retry may try again."""
        hashed = self.hash(key)
        with self.transaction() as conn:
            conn.execute("DELETE FROM answers WHERE key = ? AND state = 'pending'", (hashed,))

    def claim_nonce(self, channel: str, timestamp: str, nonce: str, digest: str) -> bool:
        """Record that (``channel``, ``timestamp``, ``nonce``) signed the body ``digest``.

        False when the pair already signed another body (a replay): one INSERT under the
        table's unique key decides, so two workers racing with two bodies never both pass.
        """
        with self.transaction() as conn:
            return self._claim_nonce(conn, channel, timestamp, nonce, digest)

    def _claim_nonce(self, conn: sqlite3.Connection, channel: str, timestamp: str, nonce: str,
                     digest: str) -> bool:
        inserted = conn.execute(
            "INSERT INTO nonces (channel, timestamp, nonce, digest, seen_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING", (channel, timestamp, nonce, digest, time.time())).rowcount
        if inserted:
            return True
        row = conn.execute("SELECT digest FROM nonces WHERE channel = ? AND timestamp = ? AND nonce = ?",
                           (channel, timestamp, nonce)).fetchone()
        return row is not None and row[0] == digest

    def count_request(self, client: str, *, window_s: int) -> int:
        """Count one request of ``client`` (an address or a user) and return how many it made in
        the current ``window_s`` window, across all workers."""
        hashed = self.hash(f"rate:{client}")
        with self.transaction() as conn:
            return self._count(conn, hashed, window_s)

    def _count(self, conn: sqlite3.Connection, hashed: str, window_s: int) -> int:
        window = int(time.time()) // window_s * window_s
        return conn.execute(
            "INSERT INTO rates (key, window, count) VALUES (?, ?, 1) ON CONFLICT (key) DO UPDATE SET"
            " count = CASE WHEN window = excluded.window THEN count + 1 ELSE 1 END, window = excluded.window"
            " RETURNING count", (hashed, window)).fetchone()[0]

    def remember(self, key: str, reply: str) -> None:
        """Keep ``reply`` under ``key`` for a few days (e.g. an answer to deliver later)."""
        hashed = self.hash(key)
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO memos (key, value, stored_at) VALUES (?, ?, ?)",
                         (hashed, reply, time.time()))

    def recall(self, key: str) -> str | None:
        """The reply remembered under ``key``, or None."""
        row = self.connection().execute(
            "SELECT value FROM memos WHERE key = ?", (self.hash(key),)).fetchone()
        return row[0] if row else None

    def _prune(self, conn: sqlite3.Connection, now: float) -> None:
        if now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        conn.execute("DELETE FROM answers WHERE claimed_at < ?", (now - KEEP_S,))
        conn.execute("DELETE FROM memos WHERE stored_at < ?", (now - KEEP_S,))
        conn.execute("DELETE FROM nonces WHERE seen_at < ?", (now - NONCE_KEEP_S,))
        conn.execute("DELETE FROM rates WHERE window < ?", (now - 3600,))  # windows are a minute or so
