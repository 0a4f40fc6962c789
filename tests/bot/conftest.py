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
