"""``policybot faq`` and ``policybot eval --library`` over the real index, each test on its own
database (the index is the session's, linked)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.cli import cli


@pytest.fixture
def runner(monkeypatch, tmp_path, data_dir) -> CliRunner:
    data = tmp_path / "data"
    data.mkdir()
    (data / "index").symlink_to(data_dir / "index", target_is_directory=True)
    monkeypatch.setenv("POLICYBOT_DATA", str(data))
    return CliRunner()


def run(runner: CliRunner, *args: str):
    result = runner.invoke(cli, list(args))
    return result


def test_faq_add_list_ask_remove(runner):
    added = run(runner, "faq", "add", "教育局的办公电话是多少", "办公电话见教育局网站“联系我们”。")
    assert added.exit_code == 0 and added.output.startswith("added FAQ 1")
    [entry] = json.loads(run(runner, "faq", "list", "--json").output)
    assert entry["question"] == "教育局的办公电话是多少"
    answer = json.loads(run(runner, "ask", "教育局办公电话是多少？", "--json").output)
    assert answer["kind"] == "faq" and answer["hits"][0]["kind"] == "faq"
    assert answer["answer"].startswith("办公电话见教育局网站") and "《常见问题》" in answer["answer"]
    assert run(runner, "faq", "remove", "1").exit_code == 0
    assert json.loads(run(runner, "ask", "教育局办公电话是多少？", "--json").output)["kind"] != "faq"
    missing = run(runner, "faq", "remove", "1")
    assert missing.exit_code == 1 and "no FAQ with id 1" in missing.output


def test_faq_add_refuses_an_empty_answer(runner):
    result = run(runner, "faq", "add", "问题", "  ")
    assert result.exit_code == 1 and "回答不能为空" in result.output and "Traceback" not in result.output


def test_eval_library_scores_the_confirmed_answers(runner):
    from bot.cli import settings
    from bot.cli_curation import curation

    without = run(runner, "eval", "--library")
    assert without.exit_code == 1 and "no confirmed answers" in without.output
    store = curation(settings())
    store.confirm("乡下老师有补助吗", "hengyang-2020-work-plan", "10", "test")
    store.confirm("大班额什么时候消除", "hengyang-2020-work-plan", "3", "unanswered")
    result = run(runner, "eval", "--library", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert 0.0 <= figures["recall@3"] <= 1.0 and figures["doc@1"] == 1.0
    table = run(runner, "eval", "--library")
    assert "questions 2 (answerable 2, unanswerable 0)" in table.output


def test_fit_library_learns_from_the_confirmed_answers_too(runner, tmp_path):
    from pathlib import Path

    from bot.cli import settings
    from bot.cli_curation import curation

    curation(settings()).confirm("乡下老师有补助吗", "hengyang-2020-work-plan", "10", "test")
    questions = Path(__file__).parent / "fixtures" / "questions.jsonl"
    out = tmp_path / "ranker.json"
    result = run(runner, "fit", str(questions), "--doc", "hengyang-2020-work-plan", "--library",
                 "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(out.read_text(encoding="utf-8"))["info"]
    asked = sum(1 for line in questions.read_text(encoding="utf-8").splitlines() if line.strip())
    assert info["questions"] == asked + 1
    assert any(name.startswith("confirmed-") for name in info["files"])
