"""The bot's database on PostgreSQL (``POLICYBOT_DATABASE_URL``), for several bot hosts sharing one
state: the same table modules as on SQLite, their SQL said in PostgreSQL's words by
:mod:`bot.storage.dialect`, over psycopg 3.

- One autocommit connection per thread (as with SQLite): a read is one statement (one round
  trip); a write transaction is ``conn.transaction()``. By default it first takes one
  transaction-scoped advisory lock, so such transactions run one at a time across every host,
  exactly as SQLite's ``BEGIN IMMEDIATE`` runs them across workers: a table module's
  read-then-write steps (queue the one active job, lease a token) stay correct without being
  rewritten for PostgreSQL. Writes that need no more than their rows' own locks ask for
  ``transaction(serial=False)`` and run side by side.
- A message's two writes (its claim with its signed pair and rate count; its answer with its log
  row, session and served answer) are each one statement (:meth:`PgStorage.write_together`):
  every part an upsert or a compare-and-set on its own key, so messages of different users never
  wait for each other, in one round trip instead of one per statement plus ``BEGIN``/``COMMIT``.
  (psycopg's pipeline mode was tried first: on loopback its bookkeeping cost more client CPU than
  the round trips it saved, measured.)
- No connection pool: a thread keeps its connection, and the threads are few and long-lived
  (gunicorn's, the answer runner's), so a pool would only add a check-out per transaction.
- A broken connection (the server restarted) is replaced on the next use.
- The schema is not changed by a serving host: ``policybot db upgrade`` applies the registry's
  migrations (:func:`upgrade`, under its own advisory lock, in one transaction); a host checks
  the versions when it first connects and refuses a newer schema, or one not yet upgraded.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import BotError
from bot.storage import Storage
from bot.storage.base import Write, call_then, check_together, returning
from bot.storage.dialect import translate, translate_schema
from bot.storage.jobs import JobStore
from bot.storage.schema import VERSIONS_TABLE, _refuse_newer, apply_migrations, behind, registered

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

#: Advisory lock keys (any 64-bit numbers no other application on the server uses).
WRITE_LOCK = 0x706F6C6963790001
MIGRATE_LOCK = 0x706F6C6963790002
BUILD_LOCK = 0x706F6C6963790003  # held by the one host building the shared index (bot.storage.shared)
CONNECT_TIMEOUT_S = 10
_PRIMARY_KEY = ("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary")


class SchemaNotUpgraded(BotError):
    """The database's schema is older than this policybot's: ``policybot db upgrade`` first."""


@cache
def _numeric_loader() -> type:
    # psycopg is imported here, not at the top: the schema registry imports every module of
    # bot.storage, and a host on SQLite should not pay a quarter of a second for it.
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        """``SUM`` over a ``BIGINT`` column is a ``numeric`` in PostgreSQL: give ints (and floats) as
        SQLite does, never a ``Decimal`` that JSON cannot carry."""

        def load(self, data: Any) -> int | float:
            value = Decimal(bytes(data).decode("ascii"))
            return int(value) if value == value.to_integral_value() else float(value)

    return NumericLoader


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection to ``url`` in the host's time zone (days of the log are local days)."""
    import psycopg

    # TCP keepalives: the build lease and the listener sit idle for minutes, and a NAT or load
    # balancer that drops idle connections would otherwise leave a half-open one (the server keeping
    # the dead session's advisory lock for hours). Ignored on a Unix socket.
    conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="policybot",
                           keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
    try:
        conn.adapters.register_loader("numeric", _numeric_loader())
        minutes = time.localtime().tm_gmtoff // 60
        sign = "-" if minutes < 0 else "+"
        conn.execute(f"SET TIME ZONE INTERVAL '{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}' HOUR TO MINUTE")
    except BaseException:
        conn.close()  # retried every second by the sync thread: a half-made connection must not leak
        raise
    return conn


def describe(url: str) -> str:
    """``url`` for messages: database, host and port, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    host = params.get("host") or "localhost"
    return f"postgresql database {params.get('dbname', '?')} on {host}:{params.get('port') or 5432}"


class PgConnection:
    """A psycopg connection that takes the table modules' SQL (SQLite's) and says it in PostgreSQL's."""

    def __init__(self, raw: psycopg.Connection, storage: PgStorage) -> None:
        self.raw = raw
        self._storage = storage

    def execute(self, statement: str, params: Any = None) -> psycopg.Cursor:
        return self.raw.execute(self._storage.sql(statement, params is not None, self.raw), params)

    def executemany(self, statement: str, rows: Any) -> psycopg.Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(self._storage.sql(statement, True, self.raw), rows)
        return cursor


class PgStorage(Storage):
    """:class:`~bot.storage.Storage` on the PostgreSQL database at ``url``: every table module's
    queries, shared by every worker of every host."""

    claims_first = True  # a message is claimed before it is computed: computed once across hosts

    def __init__(self, url: str, *, salt: str | None = None, log_days: int | None = None) -> None:
        super().__init__(Path(), salt=salt, log_days=log_days)
        self.url = url
        self.path = describe(url)  # type: ignore[assignment]  # where, in messages (no password)
        self._translated: dict[tuple[str, bool], str] = {}
        self._keys: dict[str, tuple[str, ...]] = {}
        self._together: dict[tuple, str] = {}  # write_together's statements, composed once
        self._checked = False

    @cached_property
    def jobs(self) -> JobStore:
        """The jobs, where a running job whose host no longer holds the build lease is failed at once."""
        return JobStore(self, build_lock=BUILD_LOCK)

    def connection(self) -> PgConnection:  # type: ignore[override]
        """This thread's connection, opened (and the schema version checked) on first use, and again
        when the server dropped it."""
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid() and not (conn.raw.closed or conn.raw.broken):
            return conn
        raw = connect(self.url)
        if not self._checked:
            try:
                check(raw, where=self.path)
            except BaseException:
                raw.close()
                raise
            self._checked = True
        conn = PgConnection(raw, self)
        self._local.conn, self._local.pid = conn, os.getpid()
        with self._lock:
            self._connections.append(raw)
        return conn

    @contextmanager
    def transaction(self, *, serial: bool = True) -> Iterator[PgConnection]:  # type: ignore[override]
        """A write transaction: one at a time across every host, or (``serial=False``) side by side,
        pipelined (see the module's docstring)."""
        conn = self.connection()
        if serial:
            with conn.raw.transaction():
                conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield conn
            return
        with conn.raw.transaction():
            yield conn

    def write_together(self, writes: Sequence[Write], *, durable: bool = True) -> list[Any]:
        """:meth:`~bot.storage.base.Database.write_together` as one statement: each write a
        data-modifying ``WITH`` query, their ``RETURNING`` values selected together. One round trip,
        atomic on its own (autocommit: no ``BEGIN`` or ``COMMIT`` to send). Not ``durable``: the
        commit does not wait for the WAL to reach the disk (``synchronous_commit`` off for this
        statement alone; other hosts see it at once all the same)."""
        if not writes:
            return []
        check_together(writes)
        conn = self.connection()
        statement = self._together.get(key := (durable, *(w.sql for w in writes)))
        if statement is None:
            statement = self._compose([self.sql(w.sql, True, conn.raw) for w in writes], durable=durable)
            self._together[key] = statement
        values = conn.raw.execute(statement, [p for w in writes for p in w.params]).fetchone()
        return call_then(writes, list(values)[:len(writes)])

    @staticmethod
    def _compose(statements: list[str], *, durable: bool) -> str:
        queries, values = [], []
        for n, text in enumerate(statements):
            queries.append(f"w{n} AS ({text})")
            column = returning(text)
            values.append(f"(SELECT {column} FROM w{n} LIMIT 1)" if column else "NULL")
        if not durable:  # local to the statement's own transaction; selected, or it would not run
            values.append("set_config('synchronous_commit', 'off', true)")
        return f"WITH {', '.join(queries)} SELECT {', '.join(values)}"

    def sql(self, statement: str, params: bool, conn: psycopg.Connection) -> str:
        """``statement`` in PostgreSQL's words, translated once per process."""
        key = (statement, params)
        text = self._translated.get(key)
        if text is None:
            text = translate(statement, params=params, primary_key=lambda table: self._primary_key(conn, table))
            self._translated[key] = text
        return text

    def _primary_key(self, conn: psycopg.Connection, table: str) -> tuple[str, ...]:
        if table not in self._keys:
            rows = conn.execute(_PRIMARY_KEY, (table,)).fetchall()
            if not rows:
                raise LookupError(f"table {table} has no primary key to replace rows by")
            self._keys[table] = tuple(row[0] for row in rows)
        return self._keys[table]


def schema_versions(conn: psycopg.Connection) -> dict[str, int]:
    """The version of each table module's schema in the database ({} before the first upgrade)."""
    if conn.execute("SELECT to_regclass('schema_versions')").fetchone()[0] is None:
        return {}
    return dict(conn.execute("SELECT name, version FROM schema_versions").fetchall())


def check(conn: psycopg.Connection, *, where: str) -> None:
    """Refuse a schema newer than this code, or older (not yet upgraded).

    :raise SchemaTooNew: a newer policybot upgraded the database.
    :raise SchemaNotUpgraded: ``policybot db upgrade`` has not been run since this code was installed.
    """
    versions, known = schema_versions(conn), registered()  # every module imported before the versions are judged
    _refuse_newer(versions)
    if lagging := behind(versions, known):
        steps = ", ".join(f"{name} {old}→{new}" for name, old, new in lagging)
        raise SchemaNotUpgraded(f"the bot's {where} needs schema upgrades ({steps}); "
                                "run `policybot db upgrade` once, then start the bot")


def upgrade(url: str) -> list[tuple[str, int, int]]:
    """Apply every registered migration the database lacks, in one transaction (PostgreSQL's DDL is
    transactional: all or nothing); ``(name, from, to)`` of each schema changed.

    :raise SchemaTooNew: a newer policybot upgraded the database.
    """
    with connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))  # two upgrades at once: one waits
        conn.execute(translate_schema(VERSIONS_TABLE))
        applied = apply_migrations(schema_versions(conn), registered(),
                                   lambda statement: conn.execute(translate_schema(statement)))
        for name, _, version in applied:
            conn.execute("INSERT INTO schema_versions (name, version) VALUES (%s, %s)"
                         " ON CONFLICT (name) DO UPDATE SET version = excluded.version", (name, version))
    return applied
