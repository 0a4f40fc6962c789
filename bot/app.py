"""The Flask application factory, :func:`create_app`: configuration (:mod:`bot.config`),
the services (:mod:`bot.service`), the configured channels (:mod:`bot.channels`),
``/healthz``, ``/metrics`` and the JSON API's one error handler.

There is no module-level app: gunicorn workers and tests each call the factory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bot.config import Settings
from bot.safejson import JSONProvider
from index.errors import RetrievalError

log = logging.getLogger(__name__)

#: Paths whose errors are JSON ``{ok, error, status}`` rather than Flask's HTML pages.
JSON_PATHS = ("/api/", "/healthz", "/admin/")
ops = Blueprint("ops", __name__)


def create_app(test_config: Mapping[str, Any] | Settings | None = None, *,
               instance_path: str | Path | None = None) -> Flask:
    """Build the app: settings, services, channels and error handling.

    :param test_config: settings that override every other source (keys with or without ``POLICYBOT_``;
        Flask's own keys such as ``TESTING`` go to ``app.config``), or a ready :class:`Settings`.
    :param instance_path: where ``config.py`` and ``.env`` are looked for (default: Flask's ``instance/``).
    :raise ConfigError: a setting is malformed, or a channel is partly configured; the message names
        the variable.
    """
    from bot import service
    from bot.channels import mount_channels
    from bot.config import EXTENSION, flask_config, load_settings
    from bot.storage import database_errors

    app = Flask(__name__, instance_path=str(Path(instance_path).resolve()) if instance_path else None,
                instance_relative_config=True)
    instance = Path(app.instance_path)
    overrides = None if isinstance(test_config, Settings) else test_config
    app.config.update(flask_config(overrides, instance_path=instance))
    settings = test_config if isinstance(test_config, Settings) else load_settings(overrides, instance_path=instance)
    app.extensions[EXTENSION] = settings
    app.json = JSONProvider(app)  # a body nested 20,000 deep is a 400, not a RecursionError
    if settings.proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxies)  # type: ignore[method-assign]
    app.json.ensure_ascii = False  # answers are Chinese: send them readable (and a third the size)
    service.init_app(app)
    app.extensions["policybot.channels"] = mount_channels(app)
    _mount_admin(app)
    app.register_blueprint(ops)
    app.register_error_handler(HTTPException, handle_error)
    app.register_error_handler(RetrievalError, handle_error)
    for error in database_errors():  # sqlite3's, and psycopg's when the state is in PostgreSQL
        app.register_error_handler(error, handle_database_error)
    return app


def _mount_admin(app: Flask) -> None:
    """The admin API and page, only when POLICYBOT_ADMIN_TOKEN is set (else a page saying how to set it)."""
    from bot import admin, admin_curation, admin_off
    from bot.config import settings_of

    if admin.configured(settings_of(app)):
        admin.validate(settings_of(app))
        app.register_blueprint(admin.bp)
        app.register_blueprint(admin_curation.bp)  # FAQ, feedback, confirmed answers: same token
    else:
        app.register_blueprint(admin_off.bp)


@ops.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 with the index version once the index is loaded (``status`` is ``degraded`` while a
    damaged version was skipped, and ``damaged`` names it); 503 with the reason otherwise."""
    from bot.service import get_service

    service = get_service()
    try:
        searcher = service.searchers()
    except RetrievalError as exc:
        return error_response(503, str(exc))
    body: dict[str, Any] = {"ok": True, "status": "ok", "index": searcher.version,
                            "documents": len(searcher.documents)}
    if service.searchers.damaged:
        body["status"] = "degraded"
        body["damaged"] = [{"version": v, "problem": p} for v, p in service.searchers.damaged]
    return jsonify(body), 200


@ops.get("/metrics")
def metrics() -> Response:
    """Counters and the latency histogram of this worker process, in Prometheus text format."""
    from bot.service import get_service

    service = get_service()
    text = service.metrics.render(index_version=service.searchers.version)
    return Response(text, mimetype="text/plain", content_type="text/plain; version=0.0.4; charset=utf-8")


def handle_error(exc: Exception) -> Response | HTTPException | tuple[Response, int]:
    """The JSON API's one error handler: ``{ok: false, error, status}`` under :data:`JSON_PATHS`.

    A missing or unloadable index is a 503 (the reason is logged); outside the API, HTTP
    errors keep Flask's own pages.
    """
    if isinstance(exc, RetrievalError):
        # The reason names server paths: it goes to the log and /healthz, not to the public API.
        log.error("%s %s: %s", request.method, request.path, exc)
        return error_response(503, "the documents are not available right now; please try again later")
    if not isinstance(exc, HTTPException) or not request.path.startswith(JSON_PATHS):
        return exc
    status = exc.code or 500
    # A 500 wraps an unexpected exception: its details belong in the log, not in the response.
    return error_response(status, "internal error" if status == 500 else exc.description or exc.name)


def handle_database_error(exc: Exception) -> tuple[Response, int]:
    """The shared database failed (disk full, locked too long, not writable): one log line and a
    503 that says to try again, never a 500 page."""
    log.error("%s %s: database error: %s", request.method, request.path, exc)
    if request.path.startswith(JSON_PATHS):
        return error_response(503, "the bot's database is not available right now; please try again later")
    return Response("service unavailable; please try again later", status=503, mimetype="text/plain"), 503


def error_response(status: int, message: str) -> tuple[Response, int]:
    """The API's error body with ``status``."""
    return jsonify(ok=False, error=message, status=status), status
