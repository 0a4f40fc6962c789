"""The schema registry: every table of the bot's database, declared by the module that owns
it, with versioned migrations applied in order on first use.

A table module registers its schema in one line at import time::

    register_schema("log", "CREATE TABLE IF NOT EXISTS questions (...)")

and adds a later change as one more argument (version 2, 3, ...), never by editing an applied
one. Every module of the :mod:`bot.storage` package is imported before the first connection
is set up, so a new module is found without being listed anywhere. The versions applied are
kept in the ``schema_versions`` table; a database written by a newer policybot (a version
this code does not know) is refused instead of being used half-understood.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import BotError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0
VERSIONS_TABLE = ("CREATE TABLE IF NOT EXISTS schema_versions (name TEXT PRIMARY KEY,"
                  " version INTEGER NOT NULL) WITHOUT ROWID")


class SchemaTooNew(BotError):
    """The database holds a schema version this code does not know (written by a newer policybot)."""


@dataclass(frozen=True)
class TableSchema:
    """The migrations of one table module; migration ``n`` (from 1) brings it to version ``n``."""

    name: str
    migrations: tuple[str, ...]

    @property
    def version(self) -> int:
        return len(self.migrations)


REGISTRY: dict[str, TableSchema] = {}
_discovered = False
_discover_lock = threading.Lock()


def register_schema(name: str, *migrations: str) -> TableSchema:
    """Declare table module ``name``'s schema: its migrations, oldest first (SQL statements
    separated by ``;``). Called once, at import, by the module that owns the tables."""
    if not migrations:
        raise ValueError(f"schema {name!r} needs at least one migration")
    schema = TableSchema(name, tuple(migrations))
    REGISTRY[name] = schema
    return schema


def registered() -> list[TableSchema]:
    """Every schema of the package, found by importing each of its modules once."""
    global _discovered
    with _discover_lock:
        if not _discovered:
            package = importlib.import_module("bot.storage")
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"bot.storage.{module.name}")
            _discovered = True
    return sorted(REGISTRY.values(), key=lambda s: s.name)


def migrate(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL and bring every registered schema to its newest version.

    Safe to run by many processes at once: the check is one read, and the upgrade runs in
    one ``BEGIN IMMEDIATE`` transaction that reads the versions again.

    :raise SchemaTooNew: the database was upgraded by a newer policybot.
    """
    schemas = registered()
    _retry_locked(lambda: _wal(conn))
    if _pending(conn, schemas):
        _retry_locked(lambda: _upgrade(conn, schemas))


def _wal(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        log.warning("the bot's database: journal mode is %s, not WAL (a network filesystem?)", mode)


def _versions(conn: sqlite3.Connection) -> dict[str, int]:
    conn.execute(VERSIONS_TABLE)
    return dict(conn.execute("SELECT name, version FROM schema_versions").fetchall())


def _pending(conn: sqlite3.Connection, schemas: list[TableSchema]) -> bool:
    try:
        versions = dict(conn.execute("SELECT name, version FROM schema_versions").fetchall())
    except sqlite3.OperationalError:  # no such table: a new (or pre-registry) database
        return True
    _refuse_newer(versions)
    return bool(behind(versions, schemas))


def behind(versions: dict[str, int], schemas: list[TableSchema]) -> list[tuple[str, int, int]]:
    """``(name, recorded, wanted)`` of each schema whose recorded version is older than the code's."""
    return [(s.name, versions.get(s.name, 0), s.version) for s in schemas if versions.get(s.name, 0) < s.version]


def _refuse_newer(versions: dict[str, int]) -> None:
    for name, version in versions.items():
        known = REGISTRY[name].version if name in REGISTRY else 0
        if version > known:
            raise SchemaTooNew(f"the bot's database has schema {name} version {version}, newer than this "
                               f"policybot knows ({known}); upgrade policybot")


def _upgrade(conn: sqlite3.Connection, schemas: list[TableSchema]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, _, version in apply_migrations(_versions(conn), schemas, conn.execute):
            conn.execute("INSERT OR REPLACE INTO schema_versions (name, version) VALUES (?, ?)", (name, version))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def apply_migrations(versions: dict[str, int], schemas: list[TableSchema],
                     execute: Callable[[str], object]) -> list[tuple[str, int, int]]:
    """Run, through ``execute`` (inside the caller's transaction), every migration of ``schemas`` after
    the version recorded in ``versions``; ``(name, from, to)`` of each schema changed, for the caller to
    record. The one migration loop of both backends (PostgreSQL passes a translating ``execute``).

    :raise SchemaTooNew: a newer policybot upgraded the database.
    """
    _refuse_newer(versions)
    migrations = {s.name: s.migrations for s in schemas}
    for name, old, new in (pending := behind(versions, schemas)):
        for number in range(old, new):
            for statement in statements(migrations[name][number]):
                execute(statement)
        log.info("the bot's database: schema %s at version %d", name, new)
    return pending


def statements(script: str) -> list[str]:
    """The statements of ``script``, ``--`` comments removed (executescript would commit first)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def _retry_locked(step) -> None:
    # Changing the journal mode needs the database to itself, and SQLite reports that contention
    # at once instead of waiting out the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
