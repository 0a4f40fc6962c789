"""The admin API for curated answers, beside :mod:`bot.admin` under ``/admin`` and behind the same
token: the FAQ, the users' ratings and the answers an admin confirmed.

Endpoints: ``GET/POST /admin/faq``, ``DELETE /admin/faq/<id>``; ``GET /admin/feedback`` (answers
marked unhelpful, items with the worst ratio); ``GET/POST /admin/confirmed``,
``DELETE /admin/confirmed/<id>``; ``GET /admin/candidates?q=…`` (the items a search finds for a
question, without logging it, to pick the one that answers); ``GET /admin/curation`` (all of it
at once for the page's section, with the top unanswered questions). Errors are the admin API's
``{"ok": false, "error", "status"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound

from bot import admin
from bot.storage.curation import CurationError

bp = Blueprint("curation", __name__, url_prefix="/admin")
SOURCES = ("unanswered", "unhelpful", "test")
MAX_CANDIDATES = 5


@bp.errorhandler(Exception)
def handle_error(exc: Exception) -> tuple[Response, int]:
    """The admin API's one error shape; a bad curated record is a 400 saying why."""
    if isinstance(exc, CurationError):
        exc = BadRequest(str(exc))
    return admin.handle_error(exc)


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # what users asked is not for shared caches
    return response


# -- FAQ ----------------------------------------------------------------------------------------


@bp.get("/faq")
@admin.require_admin_token
def faq_list() -> Response:
    return jsonify(faq=[_faq_json(e) for e in _curation().faqs()])


@bp.post("/faq")
@admin.require_admin_token
def faq_add() -> tuple[Response, int]:
    """``{"question", "answer"}`` → 201 ``{"id", …}``; served by every worker at once."""
    body = _body()
    entry = _curation().add_faq(body.get("question"), body.get("answer"))
    return jsonify(_faq_json(entry)), 201


@bp.delete("/faq/<int:faq_id>")
@admin.require_admin_token
def faq_remove(faq_id: int) -> Response:
    return _removed(_curation().remove_faq(faq_id), faq_id, "常见问题")


# -- feedback -----------------------------------------------------------------------------------


@bp.get("/feedback")
@admin.require_admin_token
def feedback() -> Response:
    """Answers users marked unhelpful (newest first) and items by their share of unhelpful ratings."""
    curation = _curation()
    return jsonify(unhelpful=[_stamped(r, "rated_at") for r in curation.unhelpful()],
                   worst_items=curation.worst_items())


# -- confirmed answers --------------------------------------------------------------------------


@bp.get("/confirmed")
@admin.require_admin_token
def confirmed_list() -> Response:
    return jsonify(confirmed=[_stamped(asdict(c), "confirmed_at") for c in _curation().confirmed()])


@bp.post("/confirmed")
@admin.require_admin_token
def confirm() -> tuple[Response, int]:
    """``{"question", "ref"}`` (or ``"doc_id"`` and ``"item"``) and optional ``"source"``
    (unanswered, unhelpful, test): the item answers the question. 404 for an item not served."""
    body = _body()
    source = body.get("source") or "test"
    if source not in SOURCES:
        raise BadRequest(f"source 只能是 {'、'.join(SOURCES)}")
    doc, item = _served_item(body)
    record = _curation().confirm(body.get("question"), doc.doc_id, item.locator, source)
    return jsonify({**_stamped(asdict(record), "confirmed_at"), "document": doc.title,
                    "item_title": item.title}), 201


@bp.delete("/confirmed/<int:confirmed_id>")
@admin.require_admin_token
def confirmed_remove(confirmed_id: int) -> Response:
    return _removed(_curation().remove_confirmed(confirmed_id), confirmed_id, "确认答案")


@bp.get("/candidates")
@admin.require_admin_token
def candidates() -> Response:
    """The items a search finds for ``q`` (not logged: an admin's look is not a user's question)."""
    question = (request.args.get("q") or "").strip()
    if not question or len(question) > 1000:
        raise BadRequest("请输入 1 到 1000 个字的问题")
    result = _service().searchers().search(question, k=MAX_CANDIDATES)
    return jsonify(question=question, hits=[
        {"ref": h.ref, "doc_id": h.doc_id, "document": h.doc_title, "item": h.item_locator,
         "item_title": h.item_title, "confidence": h.confidence, "sentences": list(h.sentences)}
        for h in result.hits])


@bp.get("/curation")
@admin.require_admin_token
def overview() -> Response:
    """Everything the page's curation section shows, in one request."""
    curation, storage = _curation(), _service().storage
    return jsonify(
        faq=[_faq_json(e) for e in curation.faqs()],
        unanswered=[{"question": u.question, "count": u.count} for u in storage.unanswered(limit=10)],
        unhelpful=[_stamped(r, "rated_at") for r in curation.unhelpful(limit=20)],
        worst_items=curation.worst_items(limit=10),
        confirmed=[_stamped(asdict(c), "confirmed_at") for c in curation.confirmed()],
    )


# -- helpers ------------------------------------------------------------------------------------


def _service():
    from bot.service import get_service

    return get_service()


def _curation():
    return _service().curation


def _body() -> Mapping[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, Mapping):
        raise BadRequest("请求体必须是 JSON 对象")
    return body


def _served_item(body: Mapping[str, Any]):
    """The (document, item) a body names by ``ref`` or by ``doc_id`` and ``item``, in the served index."""
    searcher = _service().searchers()
    ref, doc_id, item = body.get("ref"), body.get("doc_id"), body.get("item")
    if isinstance(ref, str) and ref.strip():
        found = searcher.find_ref(ref.strip())
    elif isinstance(doc_id, str) and isinstance(item, str | int):
        found = searcher.find_item(str(item), doc_id=doc_id)
    else:
        raise BadRequest('请给出条目：{"ref": "HY12"} 或 {"doc_id": …, "item": …}')
    if found is None:
        raise NotFound("当前索引中没有这个条目")
    return found


def _removed(found: bool, row_id: int, what: str) -> Response:
    if not found:
        raise NotFound(f"没有编号为 {row_id} 的{what}")
    return jsonify(ok=True, id=row_id)


def _faq_json(entry) -> dict[str, Any]:
    return _stamped(asdict(entry), "created_at")


def _stamped(row: Mapping[str, Any], field: str) -> dict[str, Any]:
    """``row`` with its unix time ``field`` also as local ISO time (``…_iso``)."""
    value = row.get(field)
    iso = datetime.fromtimestamp(value).isoformat(timespec="seconds") if value else None
    return {**row, f"{field.removesuffix('_at')}_iso": iso}
