"""Measure retrieval quality on labelled questions.

Two JSON-lines formats are read, one question per line::

    {"id": "q1", "question": "…", "gold_items": [3, 12], "answer_span": "…"}           # one document
    {"id": "m1", "question": "…", "gold": [{"doc": "stem", "item": 11, "span": "…"}]}   # a library

An empty gold list marks a question the documents do not answer: the right outcome is
to abstain. ``item`` is an item or article number, a locator (``"三/（二）/1"``), or null:
then the item is the one whose text holds ``span``. Rows of the first format name no
document; ``default_doc`` says which one they are about.

The caller supplies ``ask``, so the same figures are taken of the whole dialog, of the bare
searcher or of a baseline ranker. A set written about one document (the first format) is
scoped to it (``EvalQuestion.scope``): in a library, another document may answer it too.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.domain import Hit
from index.errors import CorpusError
from index.numerals import CN_NUMERAL, cn_int
from index.structure import slug


@dataclass(frozen=True)
class Gold:
    """One item that answers a question: its document stem, number or locator, and a verbatim span."""

    doc: str | None
    item: int | str | None
    span: str | None = None


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    question: str
    gold: tuple[Gold, ...]
    kind: str = ""
    source: str = ""
    scope: str | None = None  # the one document a single-document set is about: search only it

    @property
    def answerable(self) -> bool:
        return bool(self.gold)

    @property
    def doc(self) -> str:
        """The document the question is about ('' when unanswerable): used to group by document."""
        return next((g.doc for g in self.gold if g.doc), "")


@dataclass(frozen=True)
class RankedItem:
    """One item a system returned: enough to match it against gold."""

    doc_id: str
    number: int
    locator: str
    text: str = ""
    shown: str = ""  # the sentences the answer quotes from it

    @classmethod
    def from_hit(cls, hit: Hit) -> RankedItem:
        return cls(doc_id=hit.doc_id, number=hit.item_number, locator=hit.item_locator, text=hit.text,
                   shown="\n".join(hit.sentences))


@dataclass(frozen=True)
class Outcome:
    """What the system did with one question: ranked items (best first) and abstention."""

    items: tuple[RankedItem, ...]
    abstained: bool


@dataclass(frozen=True)
class Report:
    questions: int
    answerable: int
    unanswerable: int
    doc_at_1: float
    recall_at_1: float
    recall_at_3: float
    mrr: float
    span_at_3: float
    abstain_ok: float
    false_abstain: float
    p50_ms: float
    p95_ms: float
    misses: tuple[dict, ...] = ()
    by_doc: dict[str, dict[str, float]] = field(default_factory=dict)

    def figures(self) -> dict[str, float]:
        """The figures under the keys ``policybot eval --json`` promises."""
        return {
            "doc@1": self.doc_at_1, "recall@1": self.recall_at_1, "recall@3": self.recall_at_3,
            "mrr": self.mrr, "span@3": self.span_at_3, "abstain_ok": self.abstain_ok,
            "false_abstain": self.false_abstain, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
            "questions": self.questions, "answerable": self.answerable, "unanswerable": self.unanswerable,
        }


FIGURE_KEYS = ("doc@1", "recall@1", "recall@3", "mrr", "span@3", "abstain_ok", "false_abstain")


def read_questions(path: Path, *, default_doc: str | None = None) -> list[EvalQuestion]:
    """Parse a JSON-lines question file; a bad line is an error naming its line number."""
    rows: list[EvalQuestion] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read question file ({exc})") from exc
    for n, line in enumerate(lines, start=1):
        if line.strip():
            rows.append(_parse_row(path, n, line, default_doc))
    if not rows:
        raise CorpusError(f"{path}: no questions")
    return rows


def _parse_row(path: Path, n: int, line: str, default_doc: str | None) -> EvalQuestion:
    try:
        row = json.loads(line)
        scope = None
        if "gold" in row:
            gold = tuple(Gold(doc=_doc_id(g.get("doc") or default_doc), item=_item(g.get("item")),
                              span=g.get("span")) for g in row["gold"] or ())
        else:
            span = row.get("answer_span")
            gold = tuple(Gold(doc=_doc_id(default_doc), item=int(i), span=span) for i in row.get("gold_items") or ())
            scope = _doc_id(default_doc)  # written about one document: other documents may answer it too
        return EvalQuestion(qid=str(row.get("id", n)), question=str(row["question"]), gold=gold,
                            kind=str(row.get("kind", "")), source=Path(path).stem, scope=scope)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorpusError(f"{path}:{n}: not a question row ({exc})") from exc


def _doc_id(stem: str | None) -> str | None:
    """The id the index gives the document whose file stem a label names: a file
    ``Hengyang Preschool（2019）.txt`` is ``hengyang-preschool-2019`` (:func:`index.structure.slug`)."""
    return slug(str(stem)) if stem else None


def _item(value) -> int | str | None:
    """An item number (11, "11", "第十一条", "12."), else a locator ("三/（二）/1", "三")."""
    if value is None or isinstance(value, int):
        return value
    text = str(value).strip()
    if m := _NUMBERED.fullmatch(text):
        return cn_int(next(g for g in m.groups() if g))
    return text


# 12, 12. / 第十一条, 第3项, 十一条 — a bare 三 is a locator (a plan section's own text)
_NUMBERED = re.compile(rf"(\d+)[.．、]?|第\s*([\d{CN_NUMERAL}]+)\s*[条项]?|([\d{CN_NUMERAL}]+)\s*[条项]")


def matches(item: RankedItem, gold: Gold) -> bool:
    """Whether a returned item is the gold one."""
    if gold.doc and item.doc_id != gold.doc:
        return False
    if isinstance(gold.item, int):
        return item.number == gold.item
    if isinstance(gold.item, str):
        return item.locator == gold.item
    return bool(gold.span) and _contains(item.text, gold.span)


def gold_rank(items: Sequence[RankedItem], gold: Sequence[Gold]) -> int | None:
    """1-based rank of the first returned item that matches any gold item."""
    return next((n for n, item in enumerate(items, start=1) if any(matches(item, g) for g in gold)), None)


def evaluate(questions: Iterable[EvalQuestion], ask: Callable[[EvalQuestion], Outcome]) -> Report:
    """Run every question through ``ask`` and compute the figures, overall and per document."""
    rows = list(questions)
    latencies: list[float] = []
    scored: list[tuple[EvalQuestion, dict[str, float]]] = []
    misses: list[dict] = []
    for q in rows:
        start = time.perf_counter()
        out = ask(q)
        latencies.append((time.perf_counter() - start) * 1000)
        score = score_outcome(q, out)
        scored.append((q, score))
        if score.get("miss"):
            misses.append({"id": q.qid, "question": q.question,
                           "expected": [g.__dict__ for g in q.gold] or "abstain",
                           "got": [f"{i.doc_id}#{i.locator}" for i in out.items[:3]], "abstained": out.abstained})
    figures = aggregate([s for _, s in scored])
    by_doc: dict[str, list[dict[str, float]]] = {}
    for q, s in scored:
        by_doc.setdefault(q.doc or "(unanswerable)", []).append(s)
    return Report(
        questions=len(rows), answerable=int(figures["answerable"]), unanswerable=int(figures["unanswerable"]),
        doc_at_1=figures["doc@1"], recall_at_1=figures["recall@1"], recall_at_3=figures["recall@3"],
        mrr=figures["mrr"], span_at_3=figures["span@3"], abstain_ok=figures["abstain_ok"],
        false_abstain=figures["false_abstain"],
        p50_ms=round(_percentile(latencies, 50), 2), p95_ms=round(_percentile(latencies, 95), 2),
        misses=tuple(misses), by_doc={doc: aggregate(s) for doc, s in sorted(by_doc.items())},
    )


def score_outcome(q: EvalQuestion, out: Outcome) -> dict[str, float]:
    """The per-question scores that :func:`aggregate` averages."""
    if not q.answerable:
        return {"unanswerable": 1, "abstain_ok": float(out.abstained), "miss": float(not out.abstained)}
    rank = gold_rank(out.items, q.gold)
    docs = {g.doc for g in q.gold}
    top3 = out.items[:3]
    spans = [g.span for g in q.gold if g.span]
    return {
        "answerable": 1,
        "doc@1": float(bool(out.items) and (None in docs or out.items[0].doc_id in docs)),
        "recall@1": float(rank == 1), "recall@3": float(rank is not None and rank <= 3),
        "mrr": 1 / rank if rank else 0.0,
        "span@3": float(not out.abstained and any(_contains(i.shown, s) for i in top3 for s in spans)),
        "false_abstain": float(out.abstained), "miss": float(rank != 1 or out.abstained),
    }


def aggregate(scores: Sequence[dict[str, float]]) -> dict[str, float]:
    """Means over answerable (ranking) and unanswerable (abstention) questions."""
    answerable = [s for s in scores if s.get("answerable")]
    unanswerable = [s for s in scores if s.get("unanswerable")]
    out = {key: _mean(answerable, key) for key in ("doc@1", "recall@1", "recall@3", "mrr", "span@3",
                                                   "false_abstain")}
    out["abstain_ok"] = _mean(unanswerable, "abstain_ok")
    out["answerable"], out["unanswerable"] = len(answerable), len(unanswerable)
    return out


def format_table(rows: dict[str, dict[str, float]], keys: Sequence[str] = FIGURE_KEYS) -> str:
    """A plain-text table: one row per name, one column per figure."""
    width = max((len(name) for name in rows), default=4) + 2
    lines = ["".ljust(width) + "".join(f"{k:>14}" for k in keys)]
    for name, figures in rows.items():
        lines.append(name.ljust(width) + "".join(f"{_cell(figures.get(k)):>14}" for k in keys))
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _mean(rows: Sequence[dict[str, float]], key: str) -> float:
    return round(sum(r.get(key, 0.0) for r in rows) / len(rows), 4) if rows else 0.0


def _contains(text: str, span: str) -> bool:
    """Whether ``span`` is in ``text`` but for spacing and line breaks (a span copied from a
    hard-wrapped file, or with a full-width space, still matches) and Markdown bold marks."""
    return bool(span) and span.translate(_SQUASH) in text.translate(_SQUASH)


_SQUASH = str.maketrans("", "", " \n\t\r\u3000*")


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
