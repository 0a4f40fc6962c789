"""What the question log says, for the admin page's statistics: ``GET /admin/stats`` (questions
per day, answer rate, top unanswered questions, top cited items). The view is registered on the
admin blueprint by :mod:`bot.admin`, behind its token and its error handler; the counting is
done by the storage that owns the log (``Storage.stats``, ``Storage.unanswered``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import Response, jsonify

if TYPE_CHECKING:
    from bot.storage import Storage
    from index.domain import Document


def stats() -> Response:
    """Questions per day (30 days), answer rate, top unanswered questions and top cited items
    (users' questions only, not the test box's)."""
    from bot.service import get_service

    service = get_service()
    return jsonify(question_stats(service.storage, documents=service.documents()))


def question_stats(storage: Storage, *, documents: Sequence[Document] = (), days: int = 30,
                   today: date | None = None) -> dict[str, Any]:
    """What the question log says about the last ``days`` days (local time), from ``storage``.

    ``documents`` (the served ones) give cited items their titles. The admin's test questions
    (channel :data:`~bot.storage.log.ADMIN_CHANNEL`) are not counted.
    """
    today = today or date.today()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time()).timestamp()
    counts = storage.stats(since=since)
    per_day, answered, searched, cited = counts.per_day, counts.answered, counts.searches, counts.cited
    daily = [(first + timedelta(days=n)).isoformat() for n in range(days)]
    return {
        "since": first.isoformat(),
        "days": [{"date": d, "questions": per_day.get(d, (0, 0))[0], "unanswered": per_day.get(d, (0, 0))[1]}
                 for d in daily],
        "questions": sum(asked for asked, _ in per_day.values()),
        "searches": searched,
        "answered": answered,
        "answer_rate": round(answered / searched, 3) if searched else None,
        "unanswered": [{"question": u.question, "count": u.count, "last_asked": u.last_asked}
                       for u in storage.unanswered(since=since, limit=10)],
        "top_items": [_cited_item(documents, doc_id, locator, count) for doc_id, locator, count in cited],
    }


def _cited_item(documents: Sequence[Document], doc_id: str, locator: str | None, count: int) -> dict[str, Any]:
    doc = next((d for d in documents if d.doc_id == doc_id), None)
    item = next((i for i in doc.items if i.locator == locator), None) if doc else None
    return {"document": doc_id, "title": doc.title if doc else None, "item": locator,
            "item_number": item.number if item else None, "item_title": item.title if item else None,
            "count": count}
