"""The bot's database, shared by every gunicorn worker: the one owner of every table and of
the queries on them. Nothing outside this package writes SQL.

One file, ``<POLICYBOT_DATA>/policybot.sqlite3``. Each group of tables is a module that
declares its schema with :func:`~bot.storage.schema.register_schema` and its queries:

- :mod:`~bot.storage.log`: the question log (``questions``) and its statistics;
- :mod:`~bot.storage.dedup`: answers of deduplicated messages, memos, replay nonces, rate counts;
- :mod:`~bot.storage.sessions`: follow-up sessions;
- :mod:`~bot.storage.jobs`: background re-index jobs (:class:`JobStore`);
- :mod:`~bot.storage.tokens`: platform access tokens (wechatpy's session storage);
- :mod:`~bot.storage.shared`: the library and index versions several hosts share (PostgreSQL);
- :mod:`~bot.storage.base`: connections, transactions and the salted hash (``meta``).

:class:`Storage` is the object the app holds: the connection side with the per-message
tables mixed in, and the jobs and tokens as views over the same database.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bot.storage.base import Database, Write, call_then, first_value, immediate_transaction
from bot.storage.dedup import Admission, Claim, Dedup
from bot.storage.jobs import Job, JobConflict, JobStore
from bot.storage.log import LogEntry, QuestionLog, QuestionStats, Unanswered
from bot.storage.schema import SchemaTooNew, register_schema
from bot.storage.sessions import SessionTable
from bot.storage.tokens import TokenStorage

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = ["FILENAME", "Admission", "Claim", "Database", "Job", "JobConflict", "JobStore", "LogEntry",
           "QuestionStats", "SchemaTooNew", "Storage", "TokenStorage", "Unanswered", "Write", "database_errors",
           "immediate_transaction", "open_storage", "register_schema"]

FILENAME = "policybot.sqlite3"
PRUNE_EVERY_S = 3600.0


class Storage(QuestionLog, Dedup, SessionTable):
    """The SQLite database at ``path``; safe to share between threads and processes."""

    def __init__(self, path: Path, *, salt: str | None = None, log_days: int | None = None) -> None:
        super().__init__(path, salt=salt)
        self.log_days = log_days  # questions older than this are deleted (None: kept for ever)
        self._last_prune = 0.0

    def prune_due(self, now: float | None = None) -> bool:
        """Delete the rows past keeping (dedup's: :meth:`prune_dedup`; the log's, daily:
        :meth:`prune_log`), at most once every :data:`PRUNE_EVERY_S` per process, each table's in a
        transaction of its own: never inside a message's writes. True if it ran."""
        now = time.time() if now is None else now
        if now - self._last_prune < PRUNE_EVERY_S:
            return False
        self._last_prune = now
        self.prune_dedup(now)
        self.prune_log(now=now)
        return True

    @cached_property
    def jobs(self) -> JobStore:
        """The background jobs in this database."""
        return JobStore(self)

    @cached_property
    def tokens(self) -> TokenStorage:
        """The platform access tokens in this database, as wechatpy's session storage."""
        return TokenStorage(self)

    def finish(self, key: str | None, answer: str | None, entry: LogEntry, *, writes: Sequence[Write] = ()) -> None:
        """Store the answer of a claimed ``key`` (None: a message without one), log the question and
        make ``writes`` (the dialog's session changes, the served answer), all together: the one
        write of an answer (one statement on PostgreSQL)."""
        self.hash("")  # before the write: hashing may itself write the salt
        stored = [self.answer_write(key, answer)] if key is not None and answer is not None else []
        self.write_together([*stored, self.log_write(entry), *writes])

    def settle(self, key: str, answer: str, entry: LogEntry, *, writes: Sequence[Write] = (),
               admission: Admission | None = None) -> Claim:
        """The one write of a message answered after :meth:`peek`: its signed pair and rate count,
        then its answer under ``key``, log row and ``writes``, in one transaction. ``claimed``: all
        written. ``done``: another worker stored an answer first, which is returned, and nothing of
        this one is logged. ``replayed``: the signed pair signed another body meanwhile; nothing
        written."""
        self.hash("")  # before the transaction: hashing may itself write the salt
        writes = [self.log_write(entry), *writes]
        try:
            with self.transaction(serial=False) as conn:
                if not self.settle_admission(conn, admission):
                    raise _Replayed  # rolls the transaction back
                found = self.store_answer(conn, key, answer)
                if found is not None:
                    return Claim("done", found)
                values = [first_value(conn.execute(w.sql, w.params)) for w in writes]
        except _Replayed:
            return Claim("replayed")
        call_then(writes, values)
        return Claim("claimed")


class _Replayed(Exception):
    """Raised inside :meth:`Storage.settle`'s transaction to roll it back."""


def open_storage(settings: Settings) -> Storage:
    """The bot's database as ``settings`` say: PostgreSQL at ``POLICYBOT_DATABASE_URL`` when set (several
    hosts share it), else the SQLite file in ``POLICYBOT_DATA``."""
    if settings.database_url:
        from bot.storage.pg import PgStorage

        return PgStorage(settings.database_url, salt=settings.log_salt, log_days=settings.log_days)
    return Storage(settings.data / FILENAME, salt=settings.log_salt, log_days=settings.log_days)


def database_errors() -> tuple[type[Exception], ...]:
    """What a failing database raises: sqlite3's errors, and psycopg's once PostgreSQL is in use
    (never imported on a host that does not use it)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)
