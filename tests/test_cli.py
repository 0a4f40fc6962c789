"""The policybot CLI contract: commands, JSON shapes and errors, run through click's runner."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from bot.cli import cli
from tests.conftest import ROOT, SEED

FIXTURE_QUESTIONS = ROOT / "tests" / "fixtures" / "questions.jsonl"


@pytest.fixture
def runner(monkeypatch, data_dir) -> CliRunner:
    monkeypatch.setenv("POLICYBOT_DATA", str(data_dir))
    return CliRunner()


def test_help_lists_the_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("index", "parse", "ask", "eval", "serve"):
        assert command in result.output


def test_parse_json_shape():
    result = CliRunner().invoke(cli, ["parse", str(SEED), "--json"])
    assert result.exit_code == 0, result.output
    outline = json.loads(result.output)
    assert outline["title"] == "衡阳市教育局2020年工作要点"
    assert outline["year"] == 2020
    assert len(outline["sections"]) == 8
    items = [i for s in outline["sections"] for i in s["items"]]
    assert [i["number"] for i in items] == list(range(1, 28))
    assert items[11]["title"] == "办好普惠优质学前教育"
    assert all(i["sentences"] for i in items)


def test_parse_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "empty.txt"
    bad.write_text("", encoding="utf-8")
    result = CliRunner().invoke(cli, ["parse", str(bad)])
    assert result.exit_code == 1
    assert "empty.txt" in result.output and "Traceback" not in result.output


def test_ask_json_contract(runner):
    result = runner.invoke(cli, ["ask", "今年幼儿园有啥目标？", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert set(answer) >= {"answer", "abstained", "confidence", "hits"}
    assert answer["abstained"] is False
    hit = answer["hits"][0]
    assert set(hit) >= {"document", "doc_id", "item", "item_title", "section", "ref", "score", "sentences", "text"}
    assert hit["item"] == 12 and hit["ref"] == "HY12"
    assert all(s in hit["text"] for s in hit["sentences"])
    text = SEED.read_text(encoding="utf-8")
    assert all(s in text for h in answer["hits"] for s in h["sentences"])


def test_ask_plain_text_cites(runner):
    result = runner.invoke(cli, ["ask", "大班额谁来管？"])
    assert result.exit_code == 0, result.output
    assert "《衡阳市教育局2020年工作要点》" in result.output
    assert "大班额" in result.output


def test_ask_shows_the_contact_text_like_the_server(runner, monkeypatch):
    # The documents cannot say what a meal costs: the bot declines and says whom to ask.
    monkeypatch.setenv("POLICYBOT_CONTACT_TEXT", "请致电教育局 0734-1234567")
    result = runner.invoke(cli, ["ask", "食堂一顿午饭多少钱？"])
    assert result.exit_code == 0, result.output
    assert "请致电教育局 0734-1234567" in result.output


def test_ask_without_index_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path))
    result = CliRunner().invoke(cli, ["ask", "幼儿园"])
    assert result.exit_code == 1
    assert "policybot index build" in result.output


def test_index_status(runner):
    result = runner.invoke(cli, ["index", "status"])
    assert result.exit_code == 0, result.output
    assert "items: 27" in result.output


def test_eval_json_figures(runner):
    result = runner.invoke(cli, ["eval", str(FIXTURE_QUESTIONS), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    rows = [json.loads(line) for line in FIXTURE_QUESTIONS.read_text(encoding="utf-8").splitlines()]
    unanswerable = sum(not row["gold_items"] for row in rows)
    assert (figures["questions"], figures["unanswerable"]) == (len(rows), unanswerable)
    assert figures["answerable"] == len(rows) - unanswerable
    for key in ("doc@1", "recall@1", "recall@3", "mrr", "span@3", "abstain_ok", "false_abstain"):
        assert 0.0 <= figures[key] <= 1.0, (key, figures)
    # a question answered at rank 1 is also in the top 3 and counts 1 in the reciprocal rank
    assert figures["recall@1"] <= min(figures["recall@3"], figures["mrr"])
    assert 0.0 < figures["p50_ms"] <= figures["p95_ms"]
    assert figures["recall@3"] >= 0.8  # a floor far below what it measures, to catch a broken pipeline
    assert figures["abstain_ok"] >= 0.5


def test_eval_warns_of_labels_naming_documents_the_index_lacks(runner, tmp_path):
    labels = tmp_path / "q.jsonl"
    labels.write_text('{"question": "今年幼儿园有啥目标？", "gold": [{"doc": "renamed-plan", "item": 12}]}\n'
                      '{"question": "幼儿园", "gold_items": [12]}\n', encoding="utf-8")
    result = runner.invoke(cli, ["eval", str(labels), "--doc", "hengyang-2020-work-plan"])
    assert result.exit_code == 0, result.output
    # the --doc document is held: only the renamed one is named
    assert ("warning: the labels name documents this index does not hold: renamed-plan "
            "(it holds: hengyang-2020-work-plan)") in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", ":1: not a question row"), ('{"id": "x"}', ":1: not a question row"), ("", "no questions")],
)
def test_eval_bad_file(runner, tmp_path, content, message):
    bad = tmp_path / "q.jsonl"
    bad.write_text(content, encoding="utf-8")
    result = runner.invoke(cli, ["eval", str(bad)])
    assert result.exit_code == 1
    assert message in result.output


def test_index_build_progress_and_publish(monkeypatch, tmp_path, embedding_cache):
    shutil.copytree(embedding_cache, tmp_path / "cache")  # the CLI's default cache place: <data>/cache
    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path))
    result = CliRunner().invoke(cli, ["index", "build", str(SEED)])
    assert result.exit_code == 0, result.output
    assert "published index version" in result.output
