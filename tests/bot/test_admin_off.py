"""``/admin`` before the operator set ``POLICYBOT_ADMIN_TOKEN``: a Chinese page that says how
to switch it on (not a bare English 404), and the token rule enforced at start-up."""

from __future__ import annotations

import pytest

from bot.cli import cli
from bot.errors import ConfigError
from tests.bot.test_admin import CHINESE


def test_admin_without_a_token_is_a_chinese_page_saying_how_to_enable_it(make_app):
    client = make_app().test_client()
    for path in ("/admin", "/admin/"):
        response = client.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "管理后台未开启" in html and "POLICYBOT_ADMIN_TOKEN" in html
        assert "至少 <strong>16</strong> 个字符" in html and "重启服务" in html
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/documents"), ("POST", "/admin/reindex"),
                                              ("GET", "/admin/static/admin.js")])
def test_admin_api_without_a_token_is_a_404_saying_why(make_app, method, path):
    response = make_app().test_client().open(path, method=method)
    body = response.get_json()
    assert response.status_code == 404 and body["ok"] is False and body["status"] == 404
    assert "POLICYBOT_ADMIN_TOKEN" in body["error"] and CHINESE.search(body["error"])


@pytest.mark.parametrize("token", ["short-token", "fifteen-chars-x", "sixteen chars ok"])
def test_a_short_or_spaced_token_stops_the_app_at_start(make_app, token):
    with pytest.raises(ConfigError, match="POLICYBOT_ADMIN_TOKEN must be at least 16 characters without spaces"):
        make_app({"ADMIN_TOKEN": token})


def test_sixteen_characters_are_enough(make_app):
    response = make_app({"ADMIN_TOKEN": "x" * 16}).test_client().get("/admin")
    assert response.status_code == 200 and "管理令牌" in response.get_data(as_text=True)


def test_serve_with_a_short_token_says_so_and_exits(cli_runner, clean_env, bot_data):
    env = {"POLICYBOT_DATA": str(bot_data), "POLICYBOT_ADMIN_TOKEN": "too-short"}
    result = cli_runner.invoke(cli, ["serve", "--get", "/admin"], env=env)
    assert (result.exit_code, "Traceback" in result.output) == (1, False), result.output
    assert "POLICYBOT_ADMIN_TOKEN must be at least 16 characters" in result.output
