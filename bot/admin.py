"""The admin page and JSON API under ``/admin``: upload and remove documents, re-index
in the background, roll back, and read what users asked.

Mounted only when ``POLICYBOT_ADMIN_TOKEN`` is set (:func:`configured`, :func:`validate`,
like the channel modules); without it :mod:`bot.admin_off` answers ``/admin`` with a Chinese page
that says how to switch it on. Every API view needs ``Authorization: Bearer <token>``
(:func:`require_admin_token`); the page ``GET /admin`` holds no data and is served
without it, its script sends the token the admin typed. Every error of the API is
``{"ok": false, "error": …, "status": …}`` from the blueprint's one handler
(:func:`handle_error`), ``error`` in Chinese for the page (:mod:`bot.admin_text`).

Endpoints: ``GET/POST /admin/documents``, ``POST /admin/documents/preview``,
``DELETE /admin/documents/<id>``, ``POST /admin/reindex`` → 202 ``{"job"}``,
``GET /admin/jobs[/<id>]``, ``GET /admin/versions``, ``POST /admin/rollback``,
``GET /admin/stats`` (:mod:`bot.admin_stats`), ``POST /admin/ask`` (the test box).
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request, url_for
from flask.sansio.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, Unauthorized

from bot import admin_stats
from bot.admin_off import MIN_TOKEN_CHARS, locked_down
from bot.admin_text import chinese
from bot.config import Settings, settings_of
from bot.errors import ConfigError
from bot.jobs import JobConflict, JobStore, start_reindex, storage_problem
from bot.storage.jobs import STAGES, Job
from bot.storage.log import ADMIN_CHANNEL
from bot.uploads import (  # noqa: F401
    MAX_NAME_BYTES,
    MAX_NAME_CHARS,
    check_not_duplicate,
    file_sha256,
    overrides,
    parse_upload,
    preview_json,
    received,
    safe_filename,
    staging,
    sweep_uploads,
    upload_id,
)
from index.errors import BuildLocked, CorpusError, IndexNotFound
from index.library import DocumentNotFound, DocumentRecord

if TYPE_CHECKING:
    from bot.replica import Replica

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin", static_folder="static", static_url_path="/static")
SETTINGS: tuple[str, ...] = ("POLICYBOT_ADMIN_TOKEN",)
JOBS = "policybot.jobs"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

#: Status of each error the admin API expects; anything else is a 500.
_STATUS: dict[type[Exception], int] = {
    DocumentNotFound: 404, IndexNotFound: 404, CorpusError: 400, BuildLocked: 409, JobConflict: 409,
}


def configured(settings: Settings) -> bool:
    """Whether the operator switched the admin API on (``POLICYBOT_ADMIN_TOKEN`` is set)."""
    return bool(settings.admin_token)


def validate(settings: Settings) -> None:
    """:raise ConfigError: the admin token is too short to resist guessing (unset is fine: admin off)."""
    if not configured(settings):
        return
    token = str(settings.admin_token)
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(f"POLICYBOT_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters without spaces; "
                          "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")


@bp.record_once
def _on_register(state: BlueprintSetupState) -> None:
    init_app(state.app)


def init_app(app: Flask) -> None:
    """Find the jobs table in the bot's database and sweep uploads left by killed workers (called
    when the blueprint is registered)."""
    from bot.service import get_service

    app.extensions[JOBS] = get_service(app).storage.jobs
    try:
        sweep_uploads(settings_of(app).data)
    except OSError as exc:
        log.warning("could not sweep old uploads: %s", exc)


def require_admin_token(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse the request with 401 unless it carries ``Authorization: Bearer <POLICYBOT_ADMIN_TOKEN>``."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        expected = (settings_of().admin_token or "").encode()
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken must not tell how much of a guess was right.
        if not (expected and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)):
            raise Unauthorized("a valid admin token is required: send Authorization: Bearer <POLICYBOT_ADMIN_TOKEN>")
        return view(**kwargs)

    return wrapped


@bp.before_request
def _allow_uploads() -> None:
    # The app refuses bodies over 1 MiB (webhooks are small); documents may be bigger.
    request.max_content_length = MAX_UPLOAD_BYTES


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # the library and the log are not for shared caches
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.errorhandler(Exception)
def handle_error(exc: Exception) -> tuple[Response, int]:
    """The admin API's one error handler: ``{"ok": false, "error", "status"}``."""
    problem = storage_problem(exc, _data_dir())
    if isinstance(exc, HTTPException):
        status, message = exc.code or 500, exc.description or exc.name
    elif problem is not None:  # a read-only or full data dir: say what and where, not "internal error"
        log.error("%s %s: %s", request.method, request.path, problem)
        status, message = 503, problem
    else:
        status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
        message = str(exc)
    if status == 500:
        log.error("%s %s failed", request.method, request.path, exc_info=exc)
        message = "internal error (see the server log)"
    error = chinese(message, status)
    body: dict[str, Any] = {"ok": False, "error": error, "status": status}
    if error != message:
        body["detail"] = message  # the English original, for scripts and bug reports
    if isinstance(exc, JobConflict):
        body["job"] = exc.job.id  # the page watches the running job instead
    response = jsonify(body)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="policybot admin"'
    return response, status


# -- the page -------------------------------------------------------------------------------


@bp.get("")
def page() -> Response:
    """The admin page (no data in it: its script logs in with the token and calls the API)."""
    return locked_down(Response(render_template("admin.html", max_upload_mb=MAX_UPLOAD_BYTES // (1024 * 1024))))


# -- documents ------------------------------------------------------------------------------


@bp.get("/documents")
@require_admin_token
def documents() -> Response:
    """The library's documents, each with whether the served index version has it as it is now."""
    return jsonify(library_state(_data_dir()))


@bp.post("/documents")
@require_admin_token
def upload() -> tuple[Response, int]:
    """Add the uploaded ``file`` (.txt .md .docx .pdf), with optional ``title`` and ``year`` fields that
    replace the parsed ones, to the library; 400 says why a file is refused, 409 that the library has it."""
    from index.library import add_document, list_documents

    title, year = overrides(request.form)
    data = _data_dir()
    records = list_documents(data)
    with received(request.files, data) as (path, name):
        check_not_duplicate(records, upload_id(name), file_sha256(path), title=title, year=year)
        add = functools.partial(add_document, path=path, filename=name, title=title, year=year)
        replica = _replica()  # several hosts: into the shared library too
        (record,) = replica.add(lambda d: [add(d)]) if replica else [add(data)]
    body = {**record_json(record), "replaced": record.doc_id in {r.doc_id for r in records}}
    return jsonify(body), 201


@bp.post("/documents/preview")
@require_admin_token
def preview() -> Response:
    """How the uploaded ``file`` would be split (sections, items, sentences), with its parsed title and
    year and the library document it would replace or repeat; nothing is stored."""
    from index.library import list_documents

    with received(request.files, _data_dir()) as (path, name):
        sha, parsed = file_sha256(path), parse_upload(path, name)
    return jsonify(preview_json(parsed, name, sha, list_documents(_data_dir())))


@bp.delete("/documents/<doc_id>")
@require_admin_token
def delete(doc_id: str) -> Response:
    """Take a document out of the library (archived); it is served until the next re-index."""
    from index.library import remove_document

    replica = _replica()
    record = replica.remove_document(doc_id) if replica else remove_document(_data_dir(), doc_id)
    return jsonify({**record_json(record), "removed": True})


def record_json(record: DocumentRecord) -> dict[str, Any]:
    """A library record in the API's shape (``id`` rather than ``doc_id``)."""
    return {"id": record.doc_id, "title": record.title, "year": record.year, "format": record.format,
            "sections": record.sections, "items": record.items, "sentences": record.sentences,
            "added": record.added, "filename": record.filename, "encoding": record.encoding,
            "title_set": record.title_override is not None, "year_set": record.year_override is not None}


def library_state(data_dir: Path) -> dict[str, Any]:
    """The library against the served version: each document's ``status`` is ``served``
    (indexed as it is), ``changed`` (replaced since) or ``new``; ``removed`` lists served
    documents no longer in the library. Any of these means a re-index is due."""
    from index.domain import document_sha256
    from index.library import list_documents, load_documents
    from index.store import current_version, version_manifest

    version = current_version(data_dir)
    served = {d["doc_id"]: d for d in version_manifest(data_dir, version).get("documents", [])}
    texts = {doc.doc_id: document_sha256(doc) for doc in load_documents(data_dir)}
    rows = []
    for record in list_documents(data_dir):
        indexed = served.get(record.doc_id)
        status = "new" if indexed is None else "served" if indexed["sha256"] == texts.get(record.doc_id) else "changed"
        rows.append({**record_json(record), "status": status})
    library = {row["id"] for row in rows}
    removed = [{"id": d["doc_id"], "title": d["title"]} for d in served.values() if d["doc_id"] not in library]
    due = bool(removed) or any(row["status"] != "served" for row in rows)
    return {"version": version, "documents": rows, "removed": removed, "reindex_needed": due}


# -- index jobs and versions ----------------------------------------------------------------


@bp.post("/reindex")
@require_admin_token
def reindex() -> tuple[Response, int, dict[str, str]]:
    """Start re-indexing the library in the background: 202 ``{"job"}``; 409 while a build runs."""
    from index.library import list_documents
    from index.store import build_lock

    data = _data_dir()
    if not list_documents(data):
        raise CorpusError("the library is empty; upload documents first")
    try:
        # Probe: a build from the CLI holds the lock; fail now (409) rather than in the background.
        with build_lock(data):
            pass
    except BuildLocked:
        raise BuildLocked("another index build is running (a CLI `policybot index build`?); "
                          "try again when it has finished") from None
    job = start_reindex(jobs(), data, embedder=settings_of().embedder, keep=settings_of().keep_versions,
                        replica=_replica())
    return jsonify(job=job.id, state=job.state), 202, {"Location": url_for(".job", job_id=job.id)}


@bp.get("/jobs")
@require_admin_token
def job_list() -> Response:
    """The newest jobs first (the page resumes watching a running one)."""
    return jsonify(jobs=[job_json(job) for job in jobs().recent()])


@bp.get("/jobs/<job_id>")
@require_admin_token
def job(job_id: str) -> Response:
    """A job's state, progress (0..1, with its stage and done/total), version and error."""
    found = jobs().get(job_id)
    if found is None:
        raise NotFound(f"no job {job_id!r}; GET /admin/jobs lists the recent ones")
    return jsonify(job_json(found))


def job_json(job: Job) -> dict[str, Any]:
    """A job in the API's shape, with the progress its stage ends at, and its error in Chinese
    (``detail``: the English original)."""
    body = {**job.to_json(), "stage_end": STAGES.get(job.stage, (0.0, 0.0))[1]}  # where the page's bar may glide to
    if body["error"]:
        body["detail"], body["error"] = body["error"], chinese(body["error"], 500)
    return body


@bp.get("/versions")
@require_admin_token
def versions() -> Response:
    """The index versions kept, newest first, each with what it changed (``label``), which one is
    published, which one is served (another when the published one is damaged), and what is
    wrong with each damaged one."""
    from bot.admin_versions import describe_versions
    from index.store import index_health, version_manifest

    data = _data_dir()
    health = index_health(data)
    problems = {v.version: v.problem for v in health.versions}
    manifests = {v: version_manifest(data, v) if problems[v] is None else {} for v in problems}
    labels = describe_versions(list(manifests.items()))
    rows = []
    for version in sorted(problems, reverse=True):
        manifest = manifests[version]
        counts = manifest.get("counts", {})
        rows.append({"version": version, "created": manifest.get("created"), "label": labels[version],
                     "documents": counts.get("documents"), "items": counts.get("items"),
                     "titles": [d.get("title") for d in manifest.get("documents", [])],
                     "intact": problems[version] is None, "problem": problems[version]})
    return jsonify(current=health.published, served=health.served, versions=rows,
                   damaged=[{"version": v.version, "problem": v.problem} for v in health.damaged])


@bp.post("/rollback")
@require_admin_token
def rollback() -> Response:
    """Serve ``{"version": …}``, or without a body the version before the served one."""
    from index.store import current_version, list_versions
    from index.store import rollback as roll_back

    # Not silent: a body that is not JSON (or nests too deeply) is a 400, not "no body".
    body = request.get_json(force=True) if request.content_length else None
    if body is not None and not isinstance(body, Mapping):
        raise BadRequest('the body must be a JSON object like {"version": "…"} (or empty)')
    version = (body or {}).get("version")
    if version is not None and not isinstance(version, str):
        raise BadRequest(f'"version" must be a string, not {type(version).__name__}')
    data, replica = _data_dir(), _replica()
    if replica is not None:  # several hosts: the shared pointer moves, every host follows
        served, previous = replica.rollback(version)
        return jsonify(version=served, previous=previous)
    if version is not None and version not in list_versions(data):
        raise IndexNotFound(f"no index version {version!r}; GET /admin/versions lists them")
    previous = current_version(data)
    return jsonify(version=roll_back(data, version), previous=previous)


# -- the test box ---------------------------------------------------------------------------


@bp.post("/ask")
@require_admin_token
def ask() -> Response:
    """Answer ``{"question"}`` as /api/ask does, logged as the test box's (not counted in the stats)."""
    from bot.channels.web import question_text
    from bot.compose import answer_json
    from bot.domain import Question
    from bot.service import get_service

    question = Question(channel=ADMIN_CHANNEL, user_id="admin", text=question_text(request))
    return jsonify(answer_json(get_service().ask(question)))


# -- statistics (bot/admin_stats.py) ---------------------------------------------------------

bp.add_url_rule("/stats", view_func=require_admin_token(admin_stats.stats), methods=["GET"])


def jobs() -> JobStore:
    """The app's job store."""
    return current_app.extensions[JOBS]


def _data_dir() -> Path:
    return settings_of().data


def _replica() -> Replica | None:
    """This host's copy of the shared library and index (several hosts), else None."""
    from bot.service import get_service

    return get_service().replica
