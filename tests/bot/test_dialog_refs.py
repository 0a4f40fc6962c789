"""References such as YW11 open their item for anyone, in any channel, with or without a session."""

from __future__ import annotations

import pytest

from bot.dialog import Dialog
from bot.domain import Question
from index.build import build_index
from index.search import open_searcher
from tests.conftest import LAW, SEED


@pytest.fixture(scope="module")
def dialog(tmp_path_factory, embedding_cache) -> Dialog:
    path = tmp_path_factory.mktemp("refs")
    build_index([SEED, LAW], path, cache_dir=embedding_cache)
    searcher = open_searcher(path)
    return Dialog(lambda: searcher)


@pytest.mark.parametrize("text", ["YW11", "yw 11", "YW11-1"])
def test_a_reference_opens_its_item_without_a_session(dialog, text):
    answer = dialog.respond(Question("wechat", "someone-new", text))
    assert "第十一条" in answer.text and "六周岁" in answer.text


def test_the_ref_an_answer_carries_opens_the_same_item(dialog):
    hit = dialog.respond(Question("web", "u1", "孩子几岁上小学")).hits[0]
    opened = dialog.respond(Question("telegram", "u2", hit.ref))
    assert hit.item_title[:10] in opened.text


def test_letters_and_digits_that_name_no_item_are_a_question(dialog):
    answer = dialog.respond(Question("web", "u3", "K12"))
    assert answer.kind in ("answer", "abstain")
