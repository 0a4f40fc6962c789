"""Fixtures for the Flask app: ``make_app`` (a factory taking settings), ``app`` and
``client`` over the real index of corpus/, ``empty_app`` without any index, and
``cli_runner``. Every app gets its own data dir and instance folder, and no
``POLICYBOT_*`` variable of the developer's shell leaks in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from bot import answering
from bot.app import create_app
from bot.platforms import OfficialAccountClient
from bot.service import get_service
from tests.bot.fake_api import FakeAPI
from tests.bot.postgres import Databases, postgres_server

MakeApp = Callable[..., Flask]


@pytest.fixture
def clean_env(monkeypatch) -> None:
    """No POLICYBOT_* variables from the environment (the root conftest's POLICYBOT_DATA included)."""
    for name in list(os.environ):
        if name.startswith("POLICYBOT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def bot_data(tmp_path, data_dir) -> Path:
    """A fresh data dir for one test that serves the session's real index (linked, not copied)."""
    path = tmp_path / "data"
    path.mkdir()
    (path / "index").symlink_to(data_dir / "index", target_is_directory=True)
    return path


@pytest.fixture
def make_app(tmp_path, clean_env) -> Iterator[MakeApp]:
    """``make_app(settings)``: an app in testing mode; DATA defaults to an empty dir (no index)."""
    apps: list[Flask] = []

    def make(settings: Mapping[str, Any] | None = None, *, instance_path: Path | None = None) -> Flask:
        config = {"TESTING": True, "DATA": tmp_path / "empty-data", **(settings or {})}
        app = create_app(config, instance_path=instance_path or tmp_path / "instance")
        apps.append(app)
        return app

    yield make
    for app in apps:
        answering.shutdown(app)  # late answers in flight finish before the store closes
        get_service(app).close()


@pytest.fixture
def app(make_app: MakeApp, bot_data: Path) -> Flask:
    """The app over the real index, with its own question log."""
    return make_app({"DATA": bot_data})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def empty_app(make_app: MakeApp) -> Flask:
    """The app with no index published."""
    return make_app()


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    """A loopback fake of the WeChat, WeCom and Telegram HTTP APIs (late deliveries land there)."""
    with FakeAPI() as api:
        yield api


@pytest.fixture
def oa_client(fake: FakeAPI) -> Iterator[OfficialAccountClient]:
    """An Official Account API client against the fake, with its token in memory (one "worker")."""
    client = OfficialAccountClient("wx-test-appid", "oa-secret", api_base=fake.base_wechat, timeout=5)
    yield client
    client.close()


# -- PostgreSQL (tests/bot/postgres.py) ---------------------------------------------------------


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Databases]:
    """A real PostgreSQL for the session (POLICYBOT_TEST_DATABASE_URL, else a private cluster);
    skipped only when neither is there (make test installs the server)."""
    try:
        with postgres_server() as admin_url:
            databases = Databases(admin_url)
            yield databases
            databases.close()
    except LookupError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(pg_databases: Databases) -> Iterator[str]:
    """The URL of a fresh database for one test, the bot's schema applied (``policybot db upgrade``)."""
    url = pg_databases.create("schema")
    yield url
    pg_databases.drop(url)


@pytest.fixture
def pg_empty_url(pg_databases: Databases) -> Iterator[str]:
    """The URL of a fresh, empty database for one test (no schema yet)."""
    url = pg_databases.create("empty")
    yield url
    pg_databases.drop(url)


@pytest.fixture(scope="module")
def shared_url(pg_databases: Databases) -> Iterator[str]:
    """One database, the bot's schema applied, for a module's hosts (two ``policybot serve`` processes)."""
    url = pg_databases.create("schema")
    yield url
    pg_databases.drop(url)
