"""``policybot faq add/list/remove``, and the confirmed answers as labelled questions for
``policybot eval --library``.

Both read and write the same database as the server (``$POLICYBOT_DATA/policybot.sqlite3``, or PostgreSQL)
through :class:`~bot.storage.curation.Curation`: a pair added here is answered by every running
worker within a question, with no re-index.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bot.config import Settings


def curation(settings: Settings):
    """The curated tables of the database the settings name (SQLite in ``POLICYBOT_DATA``, or the
    PostgreSQL at ``POLICYBOT_DATABASE_URL`` that every host shares)."""
    from bot.storage import open_storage
    from bot.storage.curation import Curation

    return Curation(open_storage(settings))


def register(cli: click.Group, *, settings: Callable[[], Settings]) -> None:
    """Add ``faq`` to the ``policybot`` group (kept apart from cli.py to keep both short)."""

    @cli.group("faq")
    def faq_group() -> None:
        """Questions and answers the admins wrote for what the documents do not say."""

    @faq_group.command("add")
    @click.argument("question")
    @click.argument("answer")
    def faq_add(question: str, answer: str) -> None:
        """Add a QUESTION and its ANSWER; a user question close to it gets the ANSWER, cited as 《常见问题》."""
        from bot.storage.curation import CurationError

        try:
            entry = curation(settings()).add_faq(question, answer)
        except CurationError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"added FAQ {entry.id}: {entry.question}")

    @faq_group.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print the pairs as JSON.")
    def faq_list(as_json: bool) -> None:
        """List the pairs: id, date, question, answer."""
        entries = curation(settings()).faqs()
        if as_json:
            click.echo(json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2))
            return
        for e in entries:
            click.echo(f"{e.id}\t{datetime.fromtimestamp(e.created_at):%Y-%m-%d}\t{e.question}\t{e.answer}")
        if not entries:
            click.echo('no FAQ yet; add one with `policybot faq add "问题" "回答"`')

    @faq_group.command("remove")
    @click.argument("faq_id", type=int)
    def faq_remove(faq_id: int) -> None:
        """Remove pair FAQ_ID."""
        if not curation(settings()).remove_faq(faq_id):
            raise click.ClickException(f"no FAQ with id {faq_id} (see `policybot faq list`)")
        click.echo(f"removed FAQ {faq_id}")


def confirmed_questions(settings: Settings) -> Path:
    """The admins' confirmed answers as a question file in the evaluator's library format
    (``{"id", "question", "gold": [{"doc", "item"}]}`` per line), in a temporary file that goes
    when the command ends.

    :raise click.ClickException: nothing is confirmed yet.
    """
    rows = curation(settings).confirmed()
    if not rows:
        raise click.ClickException("no confirmed answers yet: confirm items on the admin page "
                                   "(POST /admin/confirmed) first")
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".jsonl", prefix="confirmed-",
                                     delete=False) as out:
        for row in rows:
            gold = [{"doc": row.doc_id, "item": row.item}]
            out.write(json.dumps({"id": f"confirmed-{row.id}", "question": row.question, "gold": gold,
                                  "kind": row.source}, ensure_ascii=False) + "\n")
    path = Path(out.name)
    click.get_current_context().call_on_close(lambda: path.unlink(missing_ok=True))
    return path
