"""The question log: one row per answered message (never the raw user id, only its salted
hash), what the admin's statistics and ``policybot log unanswered`` read, pruned after
``POLICYBOT_LOG_DAYS``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bot.storage.base import Database, Write
from bot.storage.schema import register_schema

log = logging.getLogger(__name__)

LOG_PRUNE_EVERY_S = 86400.0
#: The channel of the admin page's test box: its questions are logged under it and left out
#: of what users asked (the unanswered list, the statistics).
ADMIN_CHANNEL = "admin"

register_schema("log", """
CREATE TABLE IF NOT EXISTS questions (
    id          INTEGER PRIMARY KEY,
    asked_at    REAL NOT NULL,      -- unix time
    channel     TEXT NOT NULL,
    user_hash   TEXT NOT NULL,      -- HMAC-SHA256(log salt, user id), never the raw id
    question    TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- the dialog path: answer, abstain, help, toc, item, ...
    abstained   INTEGER NOT NULL,
    top_doc     TEXT,
    top_item    TEXT,               -- the top hit's locator
    confidence  REAL NOT NULL,
    latency_ms  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS questions_abstained ON questions (abstained, asked_at)
""", """
CREATE INDEX IF NOT EXISTS questions_asked ON questions (asked_at)  -- the prune and the statistics' day range
""")


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
class Unanswered:
    """A question the bot abstained on, with how often and when it was last asked."""

    question: str
    count: int
    last_asked: float


@dataclass(frozen=True)
class QuestionStats:
    """What the log says since a moment: questions and abstentions per local day, searches (commands
    answer none) and those answered, and the most cited ``(doc_id, locator, count)``."""

    per_day: dict[str, tuple[int, int]]
    searches: int
    answered: int
    cited: list[tuple[str, str | None, int]]


class QuestionLog(Database):
    """The ``questions`` table, mixed into :class:`bot.storage.Storage`."""

    log_days: int | None = None  # questions older than this many days are deleted (None: kept for ever)
    _last_log_prune = 0.0

    def log_question(self, entry: LogEntry) -> None:
        """Append one row to the question log (rows past ``log_days`` go in :meth:`prune_log`)."""
        self.write_together([self.log_write(entry)])

    def log_write(self, entry: LogEntry) -> Write:
        """The question log's row of ``entry``, for an answer's one write (``write_together``)."""
        return Write(
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
        with self.transaction(serial=False) as conn:
            deleted = conn.execute("DELETE FROM questions WHERE asked_at < ?", (now - self.log_days * 86400,)).rowcount
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
        """Questions users abstained on since ``since`` (unix time), most frequent first (the admin's
        tests left out)."""
        rows = self.connection().execute(
            "SELECT question, COUNT(*) AS n, MAX(asked_at) AS last FROM questions"
            " WHERE abstained = 1 AND asked_at >= ? AND channel != ? GROUP BY question"
            " ORDER BY n DESC, last DESC, question LIMIT ?", (since, ADMIN_CHANNEL, limit)).fetchall()
        return [Unanswered(*row) for row in rows]

    def stats(self, *, since: float, top: int = 10) -> QuestionStats:
        """Counts of the questions users asked since ``since`` (unix time), days in local time (the
        admin's tests, channel :data:`ADMIN_CHANNEL`, left out)."""
        conn = self.connection()
        per_day = {day: (asked, unanswered) for day, asked, unanswered in conn.execute(
            "SELECT date(asked_at, 'unixepoch', 'localtime') AS day, COUNT(*), SUM(abstained) FROM questions"
            " WHERE asked_at >= ? AND channel != ? GROUP BY day", (since, ADMIN_CHANNEL))}
        # Commands (help, a table of contents, 第N条) answer no search; the rate is over searches only.
        answered, searched = conn.execute(
            "SELECT COUNT(*) FILTER (WHERE kind = 'answer' AND abstained = 0),"
            " COUNT(*) FILTER (WHERE kind IN ('answer', 'abstain')) FROM questions"
            " WHERE asked_at >= ? AND channel != ?",
            (since, ADMIN_CHANNEL)).fetchone()
        cited = conn.execute(
            "SELECT top_doc, top_item, COUNT(*) AS n FROM questions WHERE asked_at >= ? AND abstained = 0"
            " AND top_doc IS NOT NULL AND channel != ? GROUP BY top_doc, top_item"
            " ORDER BY n DESC, top_doc, top_item LIMIT ?", (since, ADMIN_CHANNEL, top)).fetchall()
        return QuestionStats(per_day, searched, answered, [tuple(row) for row in cited])
