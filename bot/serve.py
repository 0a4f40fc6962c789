"""``policybot serve`` (gunicorn, or one in-process request with ``--get``) and
``policybot log`` (what the question log says), registered in :mod:`bot.cli`.

Flask, gunicorn and the index are imported inside the commands so that
``policybot --help`` stays instant.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from bot.config import Settings

#: gunicorn's access log without the query string: WeChat puts the sender's openid there.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
_SINCE = re.compile(r"(\d+)\s*([mhdw])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port; the log says which).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes (each loads the index once).")
@click.option("--get", "get_path", metavar="PATH",
              help="Run one GET request in-process, print the response and exit: 0 if 2xx, else 1.")
@click.option("--help-settings", is_flag=True, help="Print the POLICYBOT_* settings and exit.")
def serve(host: str, port: int, workers: int, get_path: str | None, help_settings: bool) -> None:
    """Serve the chat page, the JSON API and the configured webhooks with gunicorn."""
    if help_settings:
        from bot.config import describe

        click.echo(describe())
        return
    from bot.config import settings_of

    app = build_app()
    sync_replica(app)
    require_index(settings_of(app).data)
    if get_path:
        from bot.service import get_service

        status = run_get(app, get_path)
        get_service(app).close()  # the database's connections too (a PostgreSQL server counts them)
        sys.exit(status)
    require_free_port(host, port)
    _configure_logging()
    serving_threads()
    run_gunicorn(_warm_app, host=host, port=port, workers=workers)


@click.group("log")
def log_group() -> None:
    """Read the question log (<POLICYBOT_DATA>/policybot.sqlite3, or POLICYBOT_DATABASE_URL)."""


@log_group.command("unanswered")
@click.option("--since", default="7d", show_default=True,
              help="A span back from now (30m, 24h, 7d, 2w) or a date (2026-11-01).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="Questions to list.")
def unanswered(since: str, limit: int) -> None:
    """List the questions the documents did not answer, most frequent first."""
    from bot.storage import FILENAME, open_storage

    start = parse_since(since)
    settings = load_settings()
    path = settings.data / FILENAME
    if not settings.database_url and not path.is_file():
        raise click.ClickException(f"no question log at {path}; it is written while `policybot serve` runs")
    storage = open_storage(settings)
    try:
        rows = storage.unanswered(since=start, limit=limit)
    finally:
        storage.close()
    if not rows:
        click.echo(f"no unanswered questions since {_date(start)}")
        return
    click.echo(f"{'count':>5}  {'last asked':<16}  question")
    for row in rows:
        click.echo(f"{row.count:>5}  {_date(row.last_asked):<16}  {row.question}")


# -- library functions the commands wrap -----------------------------------------------------


def build_app(test_config: Mapping[str, Any] | None = None):
    """``create_app`` with configuration errors turned into a CLI error."""
    from bot.app import create_app
    from bot.errors import ConfigError
    from bot.storage.pg import SchemaNotUpgraded
    from bot.storage.schema import SchemaTooNew

    try:
        return create_app(test_config)
    except ConfigError as exc:
        raise click.ClickException(f"{exc} (see `policybot serve --help-settings`)") from exc
    except (SchemaTooNew, SchemaNotUpgraded) as exc:  # a host never serves a schema it does not know
        raise click.ClickException(str(exc)) from None


def load_settings() -> Settings:
    """The settings as ``create_app`` would read them, without building the app or its channels."""
    from bot import config
    from bot.errors import ConfigError

    try:
        return config.load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def sync_replica(app) -> None:
    """With several hosts, fetch the shared library and served version before serving: a new host
    starts from an empty data folder. A database that cannot be reached is logged, not fatal: the
    local copy is served, and each worker's sync thread tries again."""
    from bot.service import get_service

    replica = get_service(app).replica
    if replica is None:
        return
    try:
        replica.sync()
    except Exception as exc:  # unreachable database, a damaged pack: serve what is here meanwhile
        logging.getLogger(__name__).error("could not sync with the shared database: %s", exc)


def require_index(data_dir: Path) -> None:
    """Fail with instructions unless some intact index version is under ``data_dir`` (the workers
    fall back to the newest intact one when ``current`` is missing or damaged)."""
    from index.store import index_health, index_root

    if index_health(data_dir).served is None:
        raise click.ClickException(f"no index in {index_root(data_dir)}; run `policybot index build` first "
                                   f"(POLICYBOT_DATA={data_dir})")


def require_free_port(host: str, port: int) -> None:
    """Fail with one line if ``host:port`` cannot be listened on (gunicorn would retry, then print a trace).

    The port is checked by binding it the way gunicorn will (``SO_REUSEADDR``, so a port whose last
    connections are in TIME_WAIT counts as free) and letting it go again. Port 0 is always free.

    :raise click.ClickException: the port is in use by another process, or the host is not an
        address of this machine, or the port needs privileges.
    """
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(f"port {port} on {host} is already in use; stop the other server "
                                       f"or choose another port (--port, or PORT= for make run)") from None
        raise click.ClickException(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None


def run_get(app, path: str) -> int:
    """GET ``path`` in-process, print the body (and the status if it is not 2xx); 0 if 2xx else 1."""
    with app.test_client() as client:
        response = client.get(path)
    click.echo(response.get_data(as_text=True).rstrip("\n"))
    if not 200 <= response.status_code < 300:
        click.echo(f"GET {path}: {response.status}", err=True)
        return 1
    return 0


def parse_since(value: str, *, now: float | None = None) -> float:
    """Unix time of ``value``: a span back from ``now`` (``7d``, ``24h``) or an ISO date (local time)."""
    now = time.time() if now is None else now
    span = _SINCE.fullmatch(value.strip().lower())
    if span:
        return now - int(span.group(1)) * _UNIT_S[span.group(2)]
    try:
        return datetime.fromisoformat(value.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(f"expected a span like 7d, 24h, 30m, 2w or a date like 2026-11-01, "
                                 f"got {value!r}", param_hint="--since") from None


def serving_threads(environ: dict[str, str] | None = None) -> None:
    """One OpenMP thread per computation in the workers, unless the operator set ``OMP_NUM_THREADS``.

    A server computes many questions at once (workers x threads); an embedder or BLAS call that
    spreads one question over every core only makes its teams spin against each other, which
    costs throughput (measured by ``scripts/load.py new``). Set before the workers start, so the
    embedder and faiss load with it.
    """
    env = os.environ if environ is None else environ
    env.setdefault("OMP_NUM_THREADS", "1")


def run_gunicorn(factory: Callable[[], Any], *, host: str, port: int, workers: int) -> None:
    """Run ``factory()``'s app under gunicorn until it is stopped (SIGTERM/SIGINT)."""
    from gunicorn.app.base import BaseApplication

    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",  # threads: a webhook may wait on an answer while others are served
        "threads": 4,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "proc_name": "policybot",
        # No preload: each worker builds its own app, so no SQLite connection or faiss thread crosses a fork.
        "preload_app": False,
        "worker_exit": _worker_exit,
    }

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return factory()

    Server().run()


def _worker_exit(server: Any, worker: Any) -> None:
    """Let late answers in flight reach their users, then close the worker's connections."""
    from bot.answering import shutdown
    from bot.service import get_service

    app = getattr(worker, "wsgi", None)
    if app is not None:
        shutdown(app)
        get_service(app).close()


def _warm_app():
    """A worker's app, with the index loaded before the first request rather than during it."""
    from bot.app import create_app
    from bot.service import get_service
    from index.errors import RetrievalError

    app = create_app()
    try:
        get_service(app).searchers()
    except RetrievalError as exc:
        logging.getLogger(__name__).error("index not loaded: %s (/healthz answers 503)", exc)
    if get_service(app).replica is not None:
        get_service(app).replica.start()  # several hosts: follow the shared index (bot/replica.py)
    return app


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
