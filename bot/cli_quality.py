"""``policybot eval`` and ``policybot fit``: measure retrieval quality, fit the ranker.

Both print the plain baselines (jieba-BM25, the embedder alone) in the same run as the
product, so no figure is read without its yardstick.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click

FILES = click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
LIBRARY = click.option("--library", is_flag=True, help="Also the answers admins confirmed for this library.")
DOC = click.option("--doc", "default_doc", metavar="STEM",
                   help="The document that rows without a 'doc' (gold_items files) are about.")


def register(cli, *, dialog_factory, searcher_factory, translated) -> None:
    """Add the commands to the ``policybot`` group (kept apart from cli.py to keep both short)."""

    @cli.command("eval")
    @FILES
    @DOC
    @click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object on the last line.")
    @click.option("--misses", is_flag=True, help="List the questions not answered by a gold item.")
    @click.option("--by-doc", is_flag=True, help="A table of the figures per document.")
    @click.option("--baselines", is_flag=True, help="Also score jieba-BM25 and the embedder alone.")
    @LIBRARY
    def eval_command(files, default_doc, as_json, misses, by_doc, baselines, library) -> None:
        """Measure doc@1, recall@1/3, MRR, span@3, abstention and latency on JSON-lines question FILES
        (and, with --library, on the questions whose answers admins confirmed)."""
        from index.baselines import BASELINES, Baselines
        from index.evaluate import evaluate, format_table

        files = _with_library(files, library)
        with translated():
            questions = _questions(files, default_doc)
            dialog = dialog_factory()
            _warn_unknown_documents(questions, dialog._searcher().documents)
            report = evaluate(questions, lambda q: _outcome(dialog, q))
            rows = {"policybot": report.figures()}
            if baselines:
                plain = Baselines(dialog._searcher())
                for name in BASELINES:
                    rows[name] = evaluate(questions, lambda q, n=name: plain.outcome(n, q.question,
                                                                                     scope=q.scope)).figures()
        for miss in report.misses if misses else ():
            click.echo(json.dumps(miss, ensure_ascii=False), err=as_json)
        if as_json:
            click.echo(json.dumps(rows if baselines else report.figures(), ensure_ascii=False))
            return
        click.echo(f"questions {report.questions} (answerable {report.answerable}, "
                   f"unanswerable {report.unanswerable}); latency p50 {report.p50_ms} ms, p95 {report.p95_ms} ms")
        click.echo(format_table(rows))
        if by_doc:
            click.echo("\nper document (policybot):")
            click.echo(format_table(report.by_doc))

    @cli.command("fit")
    @FILES
    @DOC
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Where to write the model (default: the one shipped in the package).")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @LIBRARY
    def fit_command(files, default_doc, out, as_json, library) -> None:
        """Fit the ranker and abstention model on labelled FILES (and, with --library, the answers
        admins confirmed) over the served index, with leave-one-document-out cross-validation beside
        the in-sample figures."""
        from datetime import date

        files = _with_library(files, library)

        from index.baselines import BASELINES, Baselines
        from index.evaluate import evaluate, format_table
        from index.fit import collect, cross_validate, fit, fold_rankers
        from index.rank import DEFAULT_MODEL, prior_ranker

        with translated():
            questions = _questions(files, default_doc)
            searcher = searcher_factory(prior_ranker())
            _warn_unknown_documents(questions, searcher.documents)
            with click.progressbar(length=len(questions), label="features", file=sys.stderr) as bar:
                samples = collect(searcher, questions, progress=lambda n, total: bar.update(1))
            folds = fold_rankers(samples)
            ranker = fit(samples, folds)
            report = cross_validate(samples, ranker, folds)
            plain = Baselines(searcher)
            for name in BASELINES:
                report[name] = evaluate(questions, lambda q, n=name: plain.outcome(n, q.question,
                                                                                   scope=q.scope)).figures()
        info = {"fitted": date.today().isoformat(), "files": [f.name for f in files],
                "questions": len(questions), "documents": [d.doc_id for d in searcher.documents],
                "threshold": ranker.threshold,
                "cv": {k: v for k, v in report.items() if k in ("in-sample", "leave-one-doc-out", *BASELINES)}}
        from dataclasses import replace

        ranker = replace(ranker, info=info)
        target = out or DEFAULT_MODEL
        target.write_text(json.dumps(ranker.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        if as_json:
            click.echo(json.dumps(report, ensure_ascii=False))
            return
        click.echo(format_table(report))
        click.echo(f"threshold {ranker.threshold}; model written to {target}")


def _with_library(files, library: bool):
    """``files``, plus the admins' confirmed answers as one more file when ``library`` is set."""
    from bot.cli import settings
    from bot.cli_curation import confirmed_questions

    files = (*files, confirmed_questions(settings())) if library else files
    if not files:
        raise click.UsageError("give question FILES, --library, or both")
    return files


def _questions(files, default_doc):
    from index.evaluate import read_questions

    return [q for f in files for q in read_questions(f, default_doc=default_doc)]


def _warn_unknown_documents(questions, documents) -> None:
    """Say so when labels name documents the index does not hold: their questions can only
    score as misses (a file renamed, a document not indexed)."""
    held = {d.doc_id for d in documents}
    unknown = sorted({g.doc for q in questions for g in q.gold if g.doc and g.doc not in held})
    if unknown:
        click.echo(f"warning: the labels name documents this index does not hold: {', '.join(unknown)} "
                   f"(it holds: {', '.join(sorted(held))})", err=True)


def _outcome(dialog, q):
    from bot.domain import Question
    from index.evaluate import Outcome, RankedItem

    # A fresh user per question: no question may be read as a follow-up to the one before.
    answer = dialog.respond(Question(channel="eval", user_id=f"eval-{uuid.uuid4().hex}", text=q.question,
                                     scope=q.scope))
    return Outcome(items=tuple(RankedItem.from_hit(h) for h in answer.hits), abstained=answer.abstained)
