"""``policybot serve`` and ``policybot log``: the in-process smoke test (``--get``),
start-up failures, the unanswered-questions report, and one real server over
loopback HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime

import click
import pytest

from bot.cli import cli
from bot.config import SETTINGS
from bot.serve import parse_since, require_free_port, serving_threads
from bot.storage import FILENAME, LogEntry, Storage
from index.store import current_version
from tests.bot.servers import START_TIMEOUT_S, Server
from tests.conftest import ROOT

# -- serve ------------------------------------------------------------------------------------


def test_help_settings_lists_every_setting(cli_runner, clean_env):
    result = cli_runner.invoke(cli, ["serve", "--help-settings"])
    assert result.exit_code == 0, result.output
    for setting in SETTINGS:
        assert setting.name in result.output
        assert setting.help in result.output


def test_serve_without_index_says_how_to_build_one(cli_runner, clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path / "empty"))
    result = cli_runner.invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "policybot index build" in result.output
    assert "Traceback" not in result.output


def test_serve_with_bad_settings_names_the_variable(cli_runner, clean_env, monkeypatch, bot_data):
    monkeypatch.setenv("POLICYBOT_DATA", str(bot_data))
    monkeypatch.setenv("POLICYBOT_WECOM_TOKEN", "token123")
    result = cli_runner.invoke(cli, ["serve", "--get", "/healthz"])
    assert result.exit_code == 1
    assert "POLICYBOT_WECOM_AES_KEY" in result.output


@pytest.mark.parametrize(("path", "code"), [("/healthz", 0), ("/metrics", 0), ("/", 0), ("/nope", 1)])
def test_serve_get_runs_one_request(cli_runner, clean_env, monkeypatch, bot_data, data_dir, path, code):
    monkeypatch.setenv("POLICYBOT_DATA", str(bot_data))
    result = cli_runner.invoke(cli, ["serve", "--get", path])
    assert result.exit_code == code, result.output
    if path == "/healthz":
        assert json.loads(result.stdout)["index"] == current_version(data_dir)
    if code:
        assert "404" in result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another server is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_serve_on_a_busy_port_says_so_in_one_line(bot_data, busy_port):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_")}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--port", str(busy_port)],
                            cwd=ROOT, env={**environ, "POLICYBOT_DATA": str(bot_data)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (f"Error: port {busy_port} on 127.0.0.1 is already in use; stop the other server "
                             f"or choose another port (--port, or PORT= for make run)\n")


def test_workers_compute_with_one_thread_unless_the_operator_chose():
    env: dict[str, str] = {}
    serving_threads(env)
    assert env == {"OMP_NUM_THREADS": "1"}
    chosen = {"OMP_NUM_THREADS": "2"}
    serving_threads(chosen)
    assert chosen == {"OMP_NUM_THREADS": "2"}


def test_a_free_port_passes_the_check(busy_port):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    require_free_port("127.0.0.1", free)
    require_free_port("127.0.0.1", 0)
    with pytest.raises(click.ClickException, match=f"port {busy_port} on 127.0.0.1 is already in use"):
        require_free_port("127.0.0.1", busy_port)


# -- log unanswered ---------------------------------------------------------------------------


@pytest.fixture
def question_log(clean_env, monkeypatch, tmp_path) -> Storage:
    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path))
    store = Storage(tmp_path / FILENAME)
    yield store
    store.close()


def _log(store: Storage, question: str, *, abstained: bool = True, days_ago: float = 0.0) -> None:
    store.log_question(LogEntry("wechat", store.hash("u"), question, "abstain" if abstained else "answer",
                                abstained, None, None, 0.1, 3.0, asked_at=time.time() - days_ago * 86400))


def _listed(output: str) -> list[tuple[int, str]]:
    row = re.compile(r"\s*(\d+)\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+(.*)$")
    rows = [row.match(line) for line in output.splitlines()[1:]]
    return [(int(m.group(1)), m.group(2)) for m in rows if m]


def test_log_unanswered_most_frequent_first(cli_runner, question_log):
    for question, times in (("食堂几点开饭", 1), ("校服一套多少钱", 3), ("明天天气怎么样", 2)):
        for _ in range(times):
            _log(question_log, question)
    _log(question_log, "班额有什么规定", abstained=False)
    _log(question_log, "上个月的问题", days_ago=30)
    result = cli_runner.invoke(cli, ["log", "unanswered"])
    assert result.exit_code == 0, result.output
    assert _listed(result.output) == [(3, "校服一套多少钱"), (2, "明天天气怎么样"), (1, "食堂几点开饭")]

    result = cli_runner.invoke(cli, ["log", "unanswered", "--since", "60d", "--limit", "2"])
    assert _listed(result.output) == [(3, "校服一套多少钱"), (2, "明天天气怎么样")]
    since = datetime.fromtimestamp(time.time() - 40 * 86400).date().isoformat()
    result = cli_runner.invoke(cli, ["log", "unanswered", "--since", since, "--limit", "10"])
    assert (1, "上个月的问题") in _listed(result.output)


def test_log_unanswered_when_all_were_answered(cli_runner, question_log):
    _log(question_log, "班额有什么规定", abstained=False)
    result = cli_runner.invoke(cli, ["log", "unanswered"])
    assert result.exit_code == 0, result.output
    assert "no unanswered questions" in result.output


def test_log_without_a_database(cli_runner, clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path / "nothing"))
    result = cli_runner.invoke(cli, ["log", "unanswered"])
    assert result.exit_code == 1
    assert "no question log" in result.output


@pytest.mark.parametrize(
    ("value", "seconds_ago"),
    [("7d", 7 * 86400), ("24h", 86400), ("30m", 1800), ("2w", 14 * 86400), (" 1D ", 86400)],
)
def test_parse_since_spans(value, seconds_ago):
    assert parse_since(value, now=1_000_000_000.0) == 1_000_000_000.0 - seconds_ago


def test_parse_since_dates():
    assert parse_since("2026-11-01") == datetime(2026, 11, 1).timestamp()
    assert parse_since("2026-11-01T08:30") == datetime(2026, 11, 1, 8, 30).timestamp()


@pytest.mark.parametrize("value", ["", "7", "d", "-1d", "yesterday", "2026-13-01"])
def test_parse_since_rejects(value):
    with pytest.raises(click.BadParameter, match="--since|7d"):
        parse_since(value)


def test_log_bad_since_is_a_usage_error(cli_runner, question_log):
    result = cli_runner.invoke(cli, ["log", "unanswered", "--since", "last week"])
    assert result.exit_code == 2
    assert "--since" in result.output


# -- a real server ----------------------------------------------------------------------------

@pytest.fixture
def server(bot_data) -> Iterator[Server]:
    running = Server(bot_data)
    try:
        yield running
    finally:
        running.stop()


def _request(url: str, body: dict | None = None, timeout: float = 30.0) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def _wait_healthy(base: str, deadline: float, server: Server) -> dict:
    while time.monotonic() < deadline:
        try:
            status, body = _request(f"{base}/healthz", timeout=5)
        except OSError:
            status, body = 0, None
        if status == 200:
            return body
        if server.process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError("no healthy /healthz in time:\n" + "".join(server.log))


@pytest.mark.slow
def test_real_server_over_loopback(server, data_dir):
    deadline = time.monotonic() + START_TIMEOUT_S
    base = server.url(START_TIMEOUT_S)
    health = _wait_healthy(base, deadline, server)
    assert health["index"] == current_version(data_dir)

    status, body = _request(f"{base}/api/ask", {"question": "乡村教师有没有补贴？"})
    assert status == 200, body
    assert body["abstained"] is False and body["hits"]

    status, body = _request(f"{base}/api/ask", {"question": 42})
    assert status == 400 and body["ok"] is False

    status, text = _request(f"{base}/metrics")
    assert status == 200 and "policybot_index_info" in text
    status, _ = _request(f"{base}/wechat")
    assert status == 404  # not configured, not mounted

    status, _ = _request(f"{base}/healthz?openid=oSecretOpenId123")
    assert status == 200

    server.stop()
    assert server.process.returncode == 0, "".join(server.log)
    log = "".join(server.log)
    assert '"POST /api/ask' in log  # the access log is on ...
    assert "oSecretOpenId123" not in log  # ... but never shows a query string
