"""Measure retrieval quality on a question set with gold work items.

The file format is JSON lines, one question each::

    {"id": "q1", "question": "…", "gold_items": [3, 12], "answer_span": "…"}

``gold_items: []`` marks a question the documents do not answer: the right
outcome is to abstain. The caller supplies ``ask``, so the same figures can be
taken of the bare searcher or of the whole dialog with its composed answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.errors import CorpusError


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    question: str
    gold_items: tuple[int, ...]
    answer_span: str | None
    kind: str = ""


@dataclass(frozen=True)
class Outcome:
    """What the system did with one question: ranked item numbers, abstention, shown text."""

    items: tuple[int, ...]
    abstained: bool
    text: str


@dataclass(frozen=True)
class Report:
    questions: int
    answerable: int
    unanswerable: int
    recall_at_1: float
    recall_at_3: float
    mrr: float
    span_hit: float
    abstain_ok: float
    false_abstain: float
    p50_ms: float
    p95_ms: float
    misses: tuple[dict, ...] = ()

    def figures(self) -> dict[str, float]:
        """The figures under the keys ``policybot eval --json`` promises."""
        return {
            "recall@1": self.recall_at_1, "recall@3": self.recall_at_3, "mrr": self.mrr,
            "span_hit": self.span_hit, "abstain_ok": self.abstain_ok, "false_abstain": self.false_abstain,
            "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
            "questions": self.questions, "answerable": self.answerable, "unanswerable": self.unanswerable,
        }


def read_questions(path: Path) -> list[EvalQuestion]:
    """Parse a JSON-lines question file; a bad line is an error naming its line number."""
    rows: list[EvalQuestion] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read question file ({exc})") from exc
    for n, line in enumerate(lines, start=1):
        if line.strip():
            rows.append(_parse_row(path, n, line))
    if not rows:
        raise CorpusError(f"{path}: no questions")
    return rows


def _parse_row(path: Path, n: int, line: str) -> EvalQuestion:
    try:
        row = json.loads(line)
        return EvalQuestion(
            qid=str(row.get("id", n)), question=str(row["question"]),
            gold_items=tuple(int(i) for i in row.get("gold_items") or ()),
            answer_span=row.get("answer_span"), kind=str(row.get("kind", "")),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorpusError(f"{path}:{n}: not a question row ({exc})") from exc


def evaluate(questions: Iterable[EvalQuestion], ask: Callable[[str], Outcome]) -> Report:
    """Run every question through ``ask`` and compute recall, MRR, span hits, abstention and latency."""
    rows = list(questions)
    latencies: list[float] = []
    r1 = r3 = rr = span = abstain_ok = false_abstain = 0.0
    misses: list[dict] = []
    for q in rows:
        start = time.perf_counter()
        out = ask(q.question)
        latencies.append((time.perf_counter() - start) * 1000)
        if not q.gold_items:
            abstain_ok += out.abstained
            if not out.abstained:
                misses.append({"id": q.qid, "question": q.question, "expected": "abstain", "got": out.items[:3]})
            continue
        rank = next((n for n, item in enumerate(out.items, start=1) if item in q.gold_items), None)
        r1 += rank == 1
        r3 += rank is not None and rank <= 3
        rr += 1 / rank if rank else 0.0
        false_abstain += out.abstained
        span += bool(q.answer_span) and not out.abstained and _contains(out.text, q.answer_span)
        if rank != 1 or out.abstained:
            misses.append({"id": q.qid, "question": q.question, "expected": q.gold_items,
                           "got": out.items[:3], "abstained": out.abstained})
    answerable = sum(1 for q in rows if q.gold_items)
    unanswerable = len(rows) - answerable
    return Report(
        questions=len(rows), answerable=answerable, unanswerable=unanswerable,
        recall_at_1=_ratio(r1, answerable), recall_at_3=_ratio(r3, answerable), mrr=_ratio(rr, answerable),
        span_hit=_ratio(span, answerable), abstain_ok=_ratio(abstain_ok, unanswerable),
        false_abstain=_ratio(false_abstain, answerable),
        p50_ms=round(_percentile(latencies, 50), 2), p95_ms=round(_percentile(latencies, 95), 2),
        misses=tuple(misses),
    )


def _contains(text: str, span: str) -> bool:
    squash = str.maketrans("", "", " \n\t")
    return span.translate(squash) in text.translate(squash)


def _ratio(value: float, total: int) -> float:
    return round(value / total, 4) if total else 0.0


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
