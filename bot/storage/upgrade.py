"""``policybot db upgrade`` and ``policybot db status`` over either backend: which schema versions the
bot's database holds, and bringing them to this code's (:mod:`bot.storage.schema`'s registry).

On SQLite a host upgrades its file itself when it opens it (one machine, one version of the code);
on PostgreSQL only ``policybot db upgrade`` does (:func:`bot.storage.pg.upgrade`), once per release,
and every host refuses to serve until it has.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from bot.storage import FILENAME, Storage

if TYPE_CHECKING:
    from bot.config import Settings

Change = tuple[str, int, int]  # (schema, from version, to version)


def where(settings: Settings) -> str:
    """The bot's database for messages: the SQLite file, or the PostgreSQL database (no password)."""
    if settings.database_url:
        from bot.storage.pg import describe

        return describe(settings.database_url)
    return str(settings.data / FILENAME)


def database_versions(settings: Settings) -> dict[str, int]:
    """The version of each schema in the bot's database ({} while it has none)."""
    if settings.database_url:
        from bot.storage.pg import connect, schema_versions

        with connect(settings.database_url) as conn:
            return schema_versions(conn)
    path = settings.data / FILENAME
    if not path.is_file():
        return {}
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT name, version FROM schema_versions").fetchall())
    except sqlite3.OperationalError:  # no such table: created before the registry, or empty
        return {}
    finally:
        conn.close()


def upgrade_database(settings: Settings) -> list[Change]:
    """Apply the migrations the bot's database lacks; what changed.

    :raise SchemaTooNew: a newer policybot upgraded the database.
    """
    if settings.database_url:
        from bot.storage.pg import upgrade

        return upgrade(settings.database_url)
    before = database_versions(settings)
    storage = Storage(settings.data / FILENAME)
    try:
        storage.connection()  # SQLite: opening the file applies what is missing
    finally:
        storage.close()
    after = database_versions(settings)
    return [(name, before.get(name, 0), version) for name, version in sorted(after.items())
            if before.get(name, 0) != version]
