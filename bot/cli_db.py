"""``policybot db``: the schema of the bot's database (SQLite in ``POLICYBOT_DATA``, or PostgreSQL at
``POLICYBOT_DATABASE_URL``): ``upgrade`` applies this release's migrations, ``status`` compares."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import click

T = TypeVar("T")


@click.group("db")
def db_group() -> None:
    """The bot's database: schema versions and upgrades."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations the database lacks (once per release, from any one host)."""
    from bot.storage.upgrade import upgrade_database

    changes, where = _on_database(upgrade_database, "upgrade")
    for name, old, new in changes:
        click.echo(f"{name}: version {old} -> {new}")
    click.echo(f"the bot's database is up to date ({where})")


@db_group.command("status")
def db_status() -> None:
    """Each schema's version in the database beside this policybot's; exit 1 unless all agree."""
    from bot.storage.schema import registered
    from bot.storage.upgrade import database_versions

    versions, where = _on_database(database_versions, "read")
    known = {s.name: s.version for s in registered()}
    agree = True
    for name in sorted(set(known) | set(versions)):
        ours, theirs = known.get(name, 0), versions.get(name, 0)
        state = "ok" if ours == theirs else "needs `policybot db upgrade`" if theirs < ours else "NEWER than this code"
        agree &= ours == theirs
        click.echo(f"{name:<10} database {theirs}  code {ours}  {state}")
    click.echo(where)
    sys.exit(0 if agree else 1)


def _on_database(action: Callable[..., T], verb: str) -> tuple[T, str]:
    """``action(settings)`` and where the database is; any failure is one line, never a traceback."""
    from bot.serve import load_settings
    from bot.storage.schema import SchemaTooNew
    from bot.storage.upgrade import where

    settings = load_settings()
    try:
        return action(settings), where(settings)
    except SchemaTooNew as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # the server is down, the URL is wrong, no permission
        raise click.ClickException(f"cannot {verb} the bot's database ({where(settings)}): {exc}") from None


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
