"""Once-per-message state shared by the workers: the answers of deduplicated messages (a
platform retry gets the stored reply), memos (a late answer was handed to a courier), the
signed (timestamp, nonce) pairs the webhooks have seen, and the request counts of the rate
limit. Every row is short-lived, pruned once an hour (:meth:`Dedup.prune_dedup`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bot.storage.base import Database, Write
from bot.storage.schema import register_schema

log = logging.getLogger(__name__)

KEEP_S = 3 * 24 * 3600  # answers and memos are kept this long: platform retries come within hours at most
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

    state: str  # "claimed" | "done" | "pending" | "replayed" | "limited" (refused by the admission) | "new"
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
    """The ``answers``, ``memos``, ``nonces`` and ``rates`` tables, mixed into :class:`bot.storage.Storage`.

    Two ways to answer a message once. One host (SQLite): :meth:`peek` reads, the answer is
    computed, and :meth:`~bot.storage.Storage.settle` stores it with everything else in the
    message's one write transaction; two workers given the same message at once both compute it
    and the first to write wins (the other replies with the stored answer, logging nothing). Many
    hosts (PostgreSQL, :attr:`claims_first`): :meth:`claim` first, so a message is computed once
    across hosts, then :meth:`~bot.storage.Storage.finish`.
    """

    #: Whether a message is claimed (a write) before it is computed: see the class docstring.
    claims_first = False

    def peek(self, key: str, admission: Admission | None = None) -> Claim:
        """Read, write nothing: ``done`` with the stored answer of ``key``; ``replayed`` when the
        admission's signed pair already signed another body; ``limited`` when its client has used
        up the current rate window; else ``new``. One statement, one round trip.

        What it saw may change before the answer is written: :meth:`~bot.storage.Storage.settle`
        decides again for the answer and the signed pair. The rate limit is not re-checked there:
        a client's concurrent requests may pass it by as many as are in flight at once.
        """
        nonce = admission.nonce if admission else None
        rate = admission.rate if admission else None
        window = int(time.time()) // rate[1] * rate[1] if rate else 0
        answer, digest, count = self.connection().execute(
            "SELECT (SELECT answer FROM answers WHERE key = ? AND state = 'done'),"
            " (SELECT digest FROM nonces WHERE channel = ? AND timestamp = ? AND nonce = ?),"
            " (SELECT count FROM rates WHERE key = ? AND window = ?)",
            (self.hash(key), *(nonce[:3] if nonce else ("", "", "")),
             self.hash(f"rate:{rate[0]}") if rate else "", window)).fetchone()
        if nonce is not None:
            admission.nonce_ok = digest is None or digest == nonce[3]
            if not admission.nonce_ok:
                return Claim("replayed")
        if answer is not None:
            return Claim("done", answer)
        if rate is not None and (count or 0) >= rate[2]:
            return Claim("limited")
        return Claim("new")

    def settle_admission(self, conn: Any, admission: Admission | None) -> bool:
        """Inside :meth:`~bot.storage.Storage.settle`'s transaction: record the signed pair and
        count the request; False if the pair has signed another body since :meth:`peek`."""
        if admission is None:
            return True
        if admission.rate is not None:
            count = _count_write(self.hash(f"rate:{admission.rate[0]}"), admission.rate[1])
            conn.execute(count.sql, count.params)
        if admission.nonce is None:
            return True
        write = _nonce_write(*admission.nonce)
        inserted = conn.execute(write.sql, write.params).fetchone()
        admission.nonce_ok = self._nonce_ok(inserted[0] if inserted else None, *admission.nonce)
        return admission.nonce_ok

    def store_answer(self, conn: Any, key: str, answer: str) -> str | None:
        """Inside :meth:`~bot.storage.Storage.settle`'s transaction: store ``answer`` under ``key``
        unless one is there already; None when stored, else the answer found. (A pending claim,
        left by a version of the bot that claimed first, is overwritten.)"""
        hashed = self.hash(key)
        if conn.execute("INSERT INTO answers (key, state, answer, claimed_at, owner) VALUES (?, 'done', ?, ?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET state = 'done', answer = excluded.answer"
                        " WHERE answers.state = 'pending' RETURNING key",
                        (hashed, answer, time.time(), self.owner)).fetchone() is not None:
            return None
        return conn.execute("SELECT answer FROM answers WHERE key = ?", (hashed,)).fetchone()[0]

    def claim(self, key: str, *, stale_after_s: float, admission: Admission | None = None) -> Claim:
        """Take ``key`` for computing, or report its stored answer or that it is being computed;
        with ``admission``, also its signed pair (state ``replayed`` if it signed another body) and
        its rate count (``limited`` over the limit), in the same write.

        The three writes go together (:meth:`~bot.storage.base.Database.write_together`: one
        statement on PostgreSQL), each deciding on its own row: the claim is one ``INSERT`` under
        the key, so of two hosts claiming at once one inserts and the other finds the row. A
        refused message's fresh claim is deleted again; a replayed pair still counts against its
        client's rate (it is a request all the same). A pending claim older than
        ``stale_after_s`` (its worker died) can be taken over.
        """
        hashed, now = self.hash(key), time.time()
        writes = []
        if admission and admission.nonce:
            writes.append(_nonce_write(*admission.nonce))
        if admission and admission.rate:
            writes.append(_count_write(self.hash(f"rate:{admission.rate[0]}"), admission.rate[1]))
        writes.append(Write("INSERT INTO answers (key, state, claimed_at, owner) VALUES (?, 'pending', ?, ?)"
                            " ON CONFLICT (key) DO NOTHING RETURNING key", (hashed, now, self.owner)))
        # Not durable: lost in a crash of the database server, a pending claim, a signed pair or a
        # count only lets a retry compute the answer again (the answer's own write is durable).
        *admitted, inserted = self.write_together(writes, durable=False)
        refused = self._admit(admission, admitted) if admission else None
        if refused:
            if inserted is not None:
                self.release(key)
            return Claim(refused)
        return Claim("claimed") if inserted is not None else self._existing(hashed, now, stale_after_s)

    def _existing(self, hashed: str, now: float, stale_after_s: float) -> Claim:
        """The claim found under ``hashed``: its answer, pending, or taken over when stale (a
        compare-and-set on its time: of two hosts taking it over at once, one does)."""
        row = self.connection().execute("SELECT state, answer, claimed_at FROM answers WHERE key = ?",
                                        (hashed,)).fetchone()
        if row is None:  # released since the INSERT found it: the caller polls and claims again
            return Claim("pending")
        state, answer, claimed_at = row
        if state == "done":
            return Claim("done", answer)
        if now - claimed_at <= stale_after_s:
            return Claim("pending")
        with self.transaction(serial=False) as conn:
            taken = conn.execute("UPDATE answers SET claimed_at = ?, owner = ? WHERE key = ? AND state = 'pending'"
                                 " AND claimed_at = ? RETURNING key", (now, self.owner, hashed, claimed_at)).fetchone()
        if taken is None:
            return Claim("pending")
        log.warning("answer for a message pending %.0f s: its worker is gone; computing again", now - claimed_at)
        return Claim("claimed")

    def _admit(self, admission: Admission, admitted: list) -> str | None:
        """``replayed``, ``limited`` or None, from what the nonce and rate writes returned."""
        values = iter(admitted)
        if admission.nonce is not None:
            admission.nonce_ok = self._nonce_ok(next(values), *admission.nonce)
        counted = next(values) if admission.rate is not None else 0
        if admission.nonce_ok is False:
            return "replayed"
        if admission.rate is not None and counted > admission.rate[2]:
            return "limited"
        return None

    def answer_write(self, key: str, answer: str) -> Write:
        """Mark the claimed ``key`` done with ``answer``: part of an answer's one write."""
        return Write("UPDATE answers SET state = 'done', answer = ? WHERE key = ?", (answer, self.hash(key)))

    def release(self, key: str) -> None:
        """Give up a claim (computing failed) so a retry may try again."""
        hashed = self.hash(key)
        with self.transaction(serial=False) as conn:
            conn.execute("DELETE FROM answers WHERE key = ? AND state = 'pending'", (hashed,))

    def claim_nonce(self, channel: str, timestamp: str, nonce: str, digest: str) -> bool:
        """Record that (``channel``, ``timestamp``, ``nonce``) signed the body ``digest``.

        False when the pair already signed another body (a replay): one INSERT under the
        table's unique key decides, so two workers racing with two bodies never both pass.
        """
        inserted, = self.write_together([_nonce_write(channel, timestamp, nonce, digest)])
        return self._nonce_ok(inserted, channel, timestamp, nonce, digest)

    def _nonce_ok(self, inserted: str | None, channel: str, timestamp: str, nonce: str, digest: str) -> bool:
        if inserted is not None:
            return True
        row = self.connection().execute("SELECT digest FROM nonces WHERE channel = ? AND timestamp = ? AND nonce = ?",
                                        (channel, timestamp, nonce)).fetchone()
        return row is not None and row[0] == digest

    def count_request(self, client: str, *, window_s: int) -> int:
        """Count one request of ``client`` (an address or a user) and return how many it made in
        the current ``window_s`` window, across all workers."""
        count, = self.write_together([_count_write(self.hash(f"rate:{client}"), window_s)])
        return count

    def remember(self, key: str, reply: str) -> None:
        """Keep ``reply`` under ``key`` for a few days (e.g. an answer to deliver later)."""
        hashed = self.hash(key)
        with self.transaction(serial=False) as conn:
            conn.execute("INSERT OR REPLACE INTO memos (key, value, stored_at) VALUES (?, ?, ?)",
                         (hashed, reply, time.time()))

    def recall(self, key: str) -> str | None:
        """The reply remembered under ``key``, or None."""
        row = self.connection().execute(
            "SELECT value FROM memos WHERE key = ?", (self.hash(key),)).fetchone()
        return row[0] if row else None

    def prune_dedup(self, now: float) -> None:
        """Delete the answers, memos, signed pairs and rate windows past keeping, in a transaction of
        their own (see :meth:`bot.storage.Storage.prune_due`)."""
        with self.transaction(serial=False) as conn:
            conn.execute("DELETE FROM answers WHERE claimed_at < ?", (now - KEEP_S,))
            conn.execute("DELETE FROM memos WHERE stored_at < ?", (now - KEEP_S,))
            conn.execute("DELETE FROM nonces WHERE seen_at < ?", (now - NONCE_KEEP_S,))
            conn.execute("DELETE FROM rates WHERE window < ?", (now - 3600,))  # windows are a minute or so


def _nonce_write(channel: str, timestamp: str, nonce: str, digest: str) -> Write:
    """Record a signed pair; returns its digest when it is new (None: the pair was seen before)."""
    return Write("INSERT INTO nonces (channel, timestamp, nonce, digest, seen_at) VALUES (?, ?, ?, ?, ?)"
                 " ON CONFLICT DO NOTHING RETURNING digest", (channel, timestamp, nonce, digest, time.time()))


def _count_write(hashed: str, window_s: int) -> Write:
    """Count one request of client ``hashed``; returns its count in the current window."""
    window = int(time.time()) // window_s * window_s
    return Write("INSERT INTO rates (key, window, count) VALUES (?, ?, 1) ON CONFLICT (key) DO UPDATE SET"
                 " count = CASE WHEN rates.window = excluded.window THEN rates.count + 1 ELSE 1 END,"
                 " window = excluded.window RETURNING count", (hashed, window))
