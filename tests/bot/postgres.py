"""A real PostgreSQL for the tests: ``POLICYBOT_TEST_DATABASE_URL`` when set, otherwise a private
cluster of Debian's ``postgresql`` package (``scripts/install_postgres.sh``), started in a
temporary folder on its own unix socket and stopped afterwards.

Each test gets a fresh database, created from a template (the bot's schema already applied, or
empty), and dropped when the test ends. The URL given must be allowed to ``CREATE DATABASE``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ENV_URL = "POLICYBOT_TEST_DATABASE_URL"
PORT = 55432  # only names the socket file: the cluster listens on no TCP port
SCHEMA_TEMPLATE = "policybot_tpl_schema"
EMPTY_TEMPLATE = "policybot_tpl_empty"


def server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` and ``pg_ctl``, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [b for b in found if (b / "pg_ctl").is_file()]
    return max(found, key=lambda b: int(b.parent.name)) if found else None


class PrivateCluster:
    """``initdb`` + ``pg_ctl start`` in a temporary folder, as the ``postgres`` user when run as root
    (the server refuses to run as root); trust authentication over a socket only this folder holds."""

    def __init__(self, binaries: Path, *, durable: bool = False) -> None:
        self.binaries = binaries
        self.durable = durable  # fsync as in production (measurements), or not (tests)
        # Not under pytest's tmp_path: its parent is private to root and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="policybot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return make_conninfo(user="postgres", dbname="postgres", host=str(self.root), port=PORT)

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stdout}{result.stderr}{log}")

    def start(self) -> None:
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        # Durability is not what the tests check; fsync off keeps CREATE DATABASE per test cheap.
        options = f"-k {self.root} -p {PORT} -c listen_addresses='' -c max_connections=200"
        options += "" if self.durable else " -c fsync=off"
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server for this test session (see the module's docstring).

    :raise LookupError: no URL is set and no server binaries are installed.
    """
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    binaries = server_binaries()
    if binaries is None:
        raise LookupError(f"no PostgreSQL server: set {ENV_URL}, or install Debian's postgresql package "
                          "(bash scripts/install_postgres.sh, which make test runs)")
    cluster = PrivateCluster(binaries)
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead."""
    return make_conninfo(url, dbname=dbname)


def as_uri(url: str) -> str:
    """``url`` as a ``postgresql://`` URI (the form ``POLICYBOT_DATABASE_URL`` takes)."""
    params = conninfo_to_dict(url)
    host = params.pop("host", "")
    user = params.pop("user", "")
    dbname = params.pop("dbname", "")
    query = "&".join(f"{k}={v}" for k, v in {"host": host, **params}.items() if v)
    return f"postgresql://{user}@/{dbname}?{query}"


class Databases:
    """Fresh databases on one server, made from two templates: the bot's schema applied, or empty."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"policybot_t{uuid.uuid4().hex[:6]}_"  # a shared server may hold other runs' too
        self.templates = {"schema": self.prefix + "schema", "empty": self.prefix + "empty"}
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.templates["empty"])))
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.templates["schema"])))
        from bot.storage.pg import upgrade

        upgrade(as_uri(with_database(admin_url, self.templates["schema"])))
        self._count = 0

    def _execute(self, statement: sql.Composable) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)
            self._version = conn.info.server_version

    def create(self, template: str = "schema") -> str:
        """A new database copied from ``template``; its URL."""
        self._count += 1
        name = f"{self.prefix}{self._count}"
        # FILE_COPY (PostgreSQL 15+): copying a tiny template beats WAL-logging it block by block.
        strategy = sql.SQL(" STRATEGY FILE_COPY" if self._version >= 150000 else "")
        self._execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
            sql.Identifier(name), sql.Identifier(self.templates[template]), strategy))
        return as_uri(with_database(self.admin_url, name))

    def drop(self, url: str) -> None:
        name = conninfo_to_dict(url)["dbname"]  # a URI is a conninfo too
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        for name in self.templates.values():
            self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
