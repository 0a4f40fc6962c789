"""What admins and users curate, in the bot's SQLite database: FAQ pairs, the answers served
(so feedback can name what it rates) and confirmed answers (labelled questions of this library).

The tables live in the same file as the question log (their schema is registered here, like
every table module's) and this module is the only one that reads or writes them. Every gunicorn worker
sees an FAQ change at once: a counter in ``meta`` changes with every edit, and reading it is
one indexed row, cheap enough to do for every question.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypeVar

from bot.storage.base import Write
from bot.storage.log import ADMIN_CHANNEL
from bot.storage.schema import register_schema

if TYPE_CHECKING:
    from bot.storage import Storage

register_schema("curation", """
CREATE TABLE IF NOT EXISTS faq_pairs (
    id          INTEGER PRIMARY KEY,
    question    TEXT NOT NULL,
    answer      TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS served (     -- every answer a user could rate
    answer_id   TEXT PRIMARY KEY,       -- random, handed to the user with the answer
    asked_at    REAL NOT NULL,
    channel     TEXT NOT NULL,
    user_hash   TEXT NOT NULL,          -- HMAC of the user id, as in the question log
    question    TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- answer, abstain, faq
    top_doc     TEXT,
    top_item    TEXT,                   -- the top hit's locator
    top_title   TEXT,
    ref         TEXT,
    helpful     INTEGER,                -- NULL: not rated; 1 / 0
    rated_at    REAL
);
CREATE INDEX IF NOT EXISTS served_user ON served (channel, user_hash, asked_at);
CREATE INDEX IF NOT EXISTS served_rated ON served (helpful, rated_at);
CREATE TABLE IF NOT EXISTS confirmed (  -- an admin's word: this item answers this question
    id           INTEGER PRIMARY KEY,
    question     TEXT NOT NULL UNIQUE,
    doc_id       TEXT NOT NULL,
    item         TEXT NOT NULL,         -- the item's locator in its document
    source       TEXT NOT NULL,         -- where the admin found it: unanswered, unhelpful, test
    confirmed_at REAL NOT NULL
)
""", """
CREATE INDEX IF NOT EXISTS served_asked ON served (asked_at)  -- the daily prune
""")
R = TypeVar("R")
SERVED_KEEP_S = 180 * 86400  # as long as the question log keeps a question by default
PRUNE_EVERY_S = 86400.0
POPULAR_FOR_S = 10.0  # how long a process keeps the chat page's suggestions before asking again
MAX_FAQ_QUESTION = 200
MAX_FAQ_ANSWER = 1000
#: A question becomes a public suggestion only when this many different users asked it: one
#: user's question may name a child or a school, a question many ask does not.
SUGGEST_MIN_USERS = 2
SUGGEST_MAX_CHARS = 40


class CurationError(ValueError):
    """Bad input for a curated record; the message says what, in Chinese, for the admin."""


@dataclass(frozen=True)
class FaqEntry:
    id: int
    question: str
    answer: str
    created_at: float


@dataclass(frozen=True)
class Served:
    """One answer as served, for feedback: what was asked and which item answered it."""

    answer_id: str
    channel: str
    user_hash: str
    question: str
    kind: str
    top_doc: str | None = None
    top_item: str | None = None
    top_title: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class Confirmed:
    id: int
    question: str
    doc_id: str
    item: str
    source: str
    confirmed_at: float


class Curation:
    """The curated tables of ``storage``'s database."""

    def __init__(self, storage: Storage, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.storage = storage
        self._clock = clock  # for how long popular() keeps its answer
        self._last_prune = 0.0
        self._popular: dict[int, tuple[float, list[str]]] = {}  # limit → (when asked, suggestions)

    # -- FAQ ----------------------------------------------------------------------------------

    def add_faq(self, question: str, answer: str) -> FaqEntry:
        """Add a pair. :raise CurationError: either text is empty or too long."""
        question, answer = _text(question, "问题", MAX_FAQ_QUESTION), _text(answer, "回答", MAX_FAQ_ANSWER)
        now = time.time()
        with self.storage.transaction() as conn:
            row_id = conn.execute("INSERT INTO faq_pairs (question, answer, created_at) VALUES (?, ?, ?) RETURNING id",
                                  (question, answer, now)).fetchone()[0]  # (psycopg has no lastrowid)
            _bump(conn)
        return FaqEntry(int(row_id), question, answer, now)

    def faqs(self) -> list[FaqEntry]:
        """Every pair, oldest first."""
        return self._rows(FaqEntry, "faq_pairs")

    def remove_faq(self, faq_id: int) -> bool:
        """Delete pair ``faq_id``; False when there is none."""
        return self._delete("faq_pairs", faq_id)

    def faq_version(self) -> str:
        """Changes whenever a pair is added or removed, in any process (one indexed read)."""
        row = self.storage.connection().execute("SELECT value FROM meta WHERE name = 'faq_version'").fetchone()
        return row[0] if row else "0"

    # -- answers and feedback -------------------------------------------------------------------

    def record_answer(self, served: Served) -> None:
        """Keep what was served under its answer id."""
        self.storage.write_together([self.served_write(served)])

    def served_write(self, served: Served) -> Write:
        """:meth:`record_answer` as part of an answer's one write (``write_together``)."""
        return Write(
            "INSERT OR REPLACE INTO served (answer_id, asked_at, channel, user_hash, question, kind, top_doc,"
            " top_item, top_title, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (served.answer_id, time.time(), served.channel, served.user_hash, served.question, served.kind,
             served.top_doc, served.top_item, served.top_title, served.ref))

    def prune_due(self, now: float | None = None) -> int:
        """Forget answers served more than :data:`SERVED_KEEP_S` ago, at most once a day per process,
        in a transaction of its own (never an answer's); how many."""
        now = time.time() if now is None else now
        if now - self._last_prune < PRUNE_EVERY_S:
            return 0
        self._last_prune = now
        with self.storage.transaction(serial=False) as conn:
            return conn.execute("DELETE FROM served WHERE asked_at < ?", (now - SERVED_KEEP_S,)).rowcount

    def rate(self, answer_id: str, helpful: bool) -> bool:
        """Record whether answer ``answer_id`` helped (a second rating replaces the first);
        False when no such answer was served."""
        with self.storage.transaction() as conn:
            return bool(conn.execute("UPDATE served SET helpful = ?, rated_at = ? WHERE answer_id = ?",
                                     (int(helpful), time.time(), answer_id)).rowcount)

    def last_answer(self, channel: str, user_id: str, *, within_s: float) -> str | None:
        """The id of the answer this user was served last, if within ``within_s`` seconds."""
        row = self.storage.connection().execute(
            "SELECT answer_id FROM served WHERE channel = ? AND user_hash = ? AND asked_at >= ?"
            " ORDER BY asked_at DESC LIMIT 1",
            (channel, self.storage.hash(user_id), time.time() - within_s)).fetchone()
        return row[0] if row else None

    def unhelpful(self, *, limit: int = 50) -> list[dict]:
        """Answers users marked unhelpful, newest first."""
        rows = self.storage.connection().execute(
            "SELECT answer_id, question, kind, top_doc, top_item, top_title, ref, rated_at FROM served"
            " WHERE helpful = 0 ORDER BY rated_at DESC LIMIT ?", (limit,)).fetchall()
        keys = ("answer_id", "question", "kind", "doc_id", "item", "item_title", "ref", "rated_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def worst_items(self, *, limit: int = 20) -> list[dict]:
        """Items by the share of their ratings that were unhelpful, worst first."""
        rows = self.storage.connection().execute(
            # COUNT(*) FILTER, not SUM(boolean), and no alias inside ORDER BY: the same SQL runs on PostgreSQL
            "SELECT top_doc, top_item, MAX(top_title), MAX(ref), COUNT(*) FILTER (WHERE helpful = 0) AS bad,"
            " COUNT(*) AS n FROM served WHERE helpful IS NOT NULL AND top_doc IS NOT NULL GROUP BY top_doc, top_item"
            " ORDER BY CAST(COUNT(*) FILTER (WHERE helpful = 0) AS REAL) / COUNT(*) DESC, bad DESC LIMIT ?",
            (limit,)).fetchall()
        return [{"doc_id": d, "item": i, "item_title": t, "ref": r, "unhelpful": bad, "ratings": n,
                 "ratio": round(bad / n, 3)} for d, i, t, r, bad, n in rows]

    def popular(self, *, limit: int = 4) -> list[str]:
        """The most asked questions that were answered (not declined), each asked by at least
        :data:`SUGGEST_MIN_USERS` users and never marked unhelpful, not counting the admin's test
        box: suggestions for an empty chat. Kept :data:`POPULAR_FOR_S` seconds per process: the query
        groups every answer served, and every chat page asks for it. None yet is not kept: a new
        library shows its first suggestion as soon as there is one (and its table is small)."""
        now = self._clock()
        cached = self._popular.get(limit)
        if cached is not None and now - cached[0] < POPULAR_FOR_S:
            return list(cached[1])
        rows = self.storage.connection().execute(
            "SELECT question FROM served WHERE kind IN ('answer', 'faq') AND length(question) <= ? AND channel != ?"
            " GROUP BY question HAVING COUNT(DISTINCT user_hash) >= ? AND MIN(COALESCE(helpful, 1)) = 1"
            " ORDER BY COUNT(*) DESC, MAX(asked_at) DESC LIMIT ?",
            (SUGGEST_MAX_CHARS, ADMIN_CHANNEL, SUGGEST_MIN_USERS, limit)).fetchall()
        if rows:
            self._popular[limit] = (now, [row[0] for row in rows])
        return [row[0] for row in rows]

    # -- confirmed answers ------------------------------------------------------------------------

    def confirm(self, question: str, doc_id: str, item: str, source: str) -> Confirmed:
        """Keep "``item`` of ``doc_id`` answers ``question``"; a question confirmed again gets the
        newer item."""
        question = _text(question, "问题", MAX_FAQ_QUESTION)
        now = time.time()
        with self.storage.transaction() as conn:
            conn.execute(
                "INSERT INTO confirmed (question, doc_id, item, source, confirmed_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (question) DO UPDATE SET doc_id = excluded.doc_id, item = excluded.item,"
                " source = excluded.source, confirmed_at = excluded.confirmed_at",
                (question, doc_id, item, source, now))
            row = conn.execute("SELECT id FROM confirmed WHERE question = ?", (question,)).fetchone()
        return Confirmed(int(row[0]), question, doc_id, item, source, now)

    def confirmed(self) -> list[Confirmed]:
        """Every confirmed question, oldest first."""
        return self._rows(Confirmed, "confirmed")

    def remove_confirmed(self, confirmed_id: int) -> bool:
        return self._delete("confirmed", confirmed_id)

    # -- helpers ------------------------------------------------------------------------------------

    def _rows(self, record: type[R], table: str) -> list[R]:
        columns = ", ".join(f.name for f in fields(record))  # the dataclasses name their table's columns
        return [record(*row) for row in
                self.storage.connection().execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()]

    def _delete(self, table: str, row_id: int) -> bool:
        with self.storage.transaction() as conn:
            deleted = conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,)).rowcount
            if deleted and table == "faq_pairs":
                _bump(conn)  # every worker re-reads the pairs
        return bool(deleted)


def _bump(conn) -> None:
    conn.execute("INSERT INTO meta (name, value) VALUES ('faq_version', '1') ON CONFLICT (name)"
                 " DO UPDATE SET value = CAST(meta.value AS INTEGER) + 1")  # qualified: PostgreSQL


def _text(value: object, name: str, most: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CurationError(f"{name}不能为空")
    value = value.strip()
    if len(value) > most:
        raise CurationError(f"{name}最多 {most} 个字（现在 {len(value)} 个）")
    return value
