"""``policybot db upgrade`` / ``db status`` on PostgreSQL and SQLite, and a host that refuses to serve
a schema it does not know, with one line that says what to do."""

from __future__ import annotations

import psycopg
import pytest

from bot.cli import cli
from bot.config import load_settings
from bot.errors import ConfigError
from bot.storage.schema import registered


def _run(cli_runner, url: str | None, data, *args: str):
    env = {"POLICYBOT_DATA": str(data), "POLICYBOT_DATABASE_URL": url or ""}
    return cli_runner.invoke(cli, list(args), env=env, catch_exceptions=False)


def test_db_upgrade_then_serve(cli_runner, clean_env, pg_empty_url, bot_data):
    refused = _run(cli_runner, pg_empty_url, bot_data, "serve", "--get", "/healthz")
    assert refused.exit_code == 1
    (line,) = refused.output.strip().splitlines()
    assert "needs schema upgrades" in line and "run `policybot db upgrade`" in line
    assert "password" not in line and "Traceback" not in refused.output

    behind = _run(cli_runner, pg_empty_url, bot_data, "db", "status")
    assert behind.exit_code == 1 and "needs `policybot db upgrade`" in behind.output

    upgraded = _run(cli_runner, pg_empty_url, bot_data, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert all(f"{s.name}: version 0 -> {s.version}" in upgraded.output for s in registered())
    again = _run(cli_runner, pg_empty_url, bot_data, "db", "upgrade")
    assert again.exit_code == 0 and "version" not in again.output and "up to date" in again.output
    assert _run(cli_runner, pg_empty_url, bot_data, "db", "status").exit_code == 0

    served = _run(cli_runner, pg_empty_url, bot_data, "serve", "--get", "/healthz")
    assert served.exit_code == 0 and '"ok":true' in served.output.replace(" ", "")


def test_a_host_refuses_a_newer_schema_in_one_line(cli_runner, clean_env, pg_url, bot_data):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_versions SET version = version + 1 WHERE name = 'sessions'")
    result = _run(cli_runner, pg_url, bot_data, "serve", "--get", "/healthz")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "schema sessions version" in line and "upgrade policybot" in line
    status = _run(cli_runner, pg_url, bot_data, "db", "status")
    assert status.exit_code == 1 and "NEWER than this code" in status.output
    assert "newer than this policybot" in _run(cli_runner, pg_url, bot_data, "db", "upgrade").output


def test_db_upgrade_on_sqlite_creates_the_file(cli_runner, clean_env, tmp_path):
    result = _run(cli_runner, None, tmp_path, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "policybot.sqlite3").is_file() and "log: version 0 -> " in result.output
    assert _run(cli_runner, None, tmp_path, "db", "status").exit_code == 0


def test_an_unreachable_server_is_one_line(cli_runner, clean_env, tmp_path):
    url = f"postgresql://policybot@/nowhere?host={tmp_path}&port=1"  # no server on this socket
    result = _run(cli_runner, url, tmp_path, "db", "upgrade")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot upgrade the bot's database (postgresql database nowhere")


def test_the_url_must_be_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="POLICYBOT_DATABASE_URL must be a postgresql:// URL") as error:
        load_settings({"DATABASE_URL": "mysql://root:hunter2@db/bot"}, instance_path=tmp_path)
    assert "hunter2" not in str(error.value)  # a secret setting's value is never echoed
