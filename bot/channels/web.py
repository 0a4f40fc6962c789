"""The web channel: a small chat page at ``/`` and the JSON API: ``POST /api/ask``,
``POST /api/feedback`` (👍 / 👎 on an answer) and ``GET /api/item/<ref>`` (an item in full).

``POST /api/ask`` takes ``{"question": "…"}`` (at most :data:`MAX_QUESTION_CHARS`
characters) and returns :func:`bot.compose.answer_json` of the answer. Bad input is
a 400 with the API's one error shape ``{"ok": false, "error": …, "status": …}``,
produced by the app's error handler (:mod:`bot.app`). An optional
``Idempotency-Key`` header makes a retried request get the first answer.

Browsers get an anonymous random visitor id in a cookie, so follow-up questions
("那高中呢？") work; API clients without cookies simply ask standalone questions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Request, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import BadRequest, NotFound

from bot.domain import UNLIMITED, Question
from bot.ratelimit import allowed, retry_after

bp = Blueprint("web", __name__)
SETTINGS: tuple[str, ...] = ()
MAX_QUESTION_CHARS = 1000
MAX_KEY_CHARS = 200
VISITOR_COOKIE = "policybot_visitor"
VISITOR_MAX_AGE_S = 30 * 24 * 3600
SUGGESTIONS = 4  # questions offered on an empty chat
_REF = re.compile(r"(?P<ref>[A-Za-z]{1,3}\d{1,4})(?:-(?P<part>\d{1,3}))?")


@bp.get("/")
def chat() -> str:
    """The chat page: a form that posts to /api/ask and shows answers with their citations."""
    from bot.service import get_service

    service = get_service()
    return render_template("chat.html", documents=service.documents(), max_chars=MAX_QUESTION_CHARS,
                           suggestions=service.curation.popular(limit=SUGGESTIONS))


@bp.post("/api/ask")
def ask() -> Response | tuple[Response, int]:
    """Answer ``{"question": "…"}`` with the answer's JSON (text, citations as hits); 429 over the rate limit."""
    from bot.app import error_response
    from bot.compose import answer_json
    from bot.service import get_service

    text = question_text(request)
    if not allowed(current_app, f"web:{request.remote_addr}", address=request.remote_addr or ""):
        response, status = error_response(429, "too many questions from this address; please wait a minute")
        response.headers["Retry-After"] = str(retry_after())
        return response, status
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > MAX_KEY_CHARS:
        raise BadRequest(f"Idempotency-Key must be at most {MAX_KEY_CHARS} characters")
    if key is not None:
        # Scoped by the question: a key reused (or guessed) with another question is another request.
        key = f"{hashlib.sha256(text.encode()).hexdigest()[:16]}:{key}"
    visitor, new = _visitor(request)
    answer = get_service().ask(Question(channel="web", user_id=visitor, text=text), UNLIMITED, dedupe_key=key)
    response = jsonify(answer_json(answer))
    if new:
        response.set_cookie(VISITOR_COOKIE, visitor, max_age=VISITOR_MAX_AGE_S, httponly=True,
                            samesite="Lax", secure=request.is_secure)
    return response


@bp.post("/api/feedback")
def feedback() -> Response:
    """Rate an answer: ``{"answer_id": "…", "helpful": true|false}`` → ``{"ok": true}``; 404 for an
    answer id the bot never gave (or one forgotten after half a year)."""
    from bot.service import get_service

    body = request.get_json(force=True, silent=True)
    if not isinstance(body, Mapping):
        raise BadRequest('the body must be a JSON object like {"answer_id": "…", "helpful": true}')
    answer_id, helpful = body.get("answer_id"), body.get("helpful")
    if not isinstance(answer_id, str) or not 0 < len(answer_id) <= MAX_KEY_CHARS:
        raise BadRequest('"answer_id" must be the string /api/ask returned')
    if not isinstance(helpful, bool):
        raise BadRequest('"helpful" must be true or false')
    if not get_service().curation.rate(answer_id, helpful):
        raise NotFound("no answer with this answer_id")
    return jsonify(ok=True, answer_id=answer_id, helpful=helpful)


@bp.get("/api/item/<ref>")
def item(ref: str) -> Response:
    """The item a reference names (``HY12``, ``HY12-2`` for a later part), as ``/api/ask`` would
    answer it but without logging a question: what the chat page opens when a citation is clicked."""
    from bot.compose import answer_json
    from bot.service import get_service

    match = _REF.fullmatch(ref)
    answer = get_service().dialog.open_ref(match["ref"], int(match["part"] or 1)) if match else None
    if answer is None:
        raise NotFound(f"no item {ref}")
    return jsonify({**answer_json(answer), "ref": ref})


def question_text(req: Request) -> str:
    """The question of an /api/ask body.

    :raise BadRequest: the body is not a JSON object, or ``question`` is missing,
        not a string, or too long; the description says which.
    """
    body = req.get_json(force=True, silent=True)  # force: curl users often omit the Content-Type
    if not isinstance(body, Mapping):
        raise BadRequest('the body must be a JSON object like {"question": "班额有什么规定？"}')
    question: Any = body.get("question")
    if question is None:
        raise BadRequest('"question" is missing')
    if not isinstance(question, str):
        raise BadRequest(f'"question" must be a string, not {type(question).__name__}')
    if len(question) > MAX_QUESTION_CHARS:
        raise BadRequest(f'"question" must be at most {MAX_QUESTION_CHARS} characters (got {len(question)})')
    return question


def _visitor(req: Request) -> tuple[str, bool]:
    """The visitor id from the cookie, or a new random one (and True)."""
    visitor = req.cookies.get(VISITOR_COOKIE, "")
    if 16 <= len(visitor) <= 64 and visitor.isascii():
        return visitor, False
    return secrets.token_urlsafe(18), True


def configured(settings: Any) -> bool:
    """Always: the web page and API need no secrets."""
    return True


def validate(settings: Any) -> None:
    """Nothing to check."""
