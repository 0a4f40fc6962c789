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


@pytest.mark.parametrize("text", [
    "义务教育法第十一条", "义务教育法第11条是什么？", "中华人民共和国义务教育法的第十一条说了什么",
])
def test_a_documents_name_and_an_article_number_open_that_article(dialog, text):
    answer = dialog.respond(Question("wechat", "u4", text))
    assert answer.kind == "item" and "第十一条" in answer.text and "六周岁" in answer.text


def test_the_named_document_is_read_even_when_another_has_that_number_first(dialog):
    # the seed plan (2020) is the newest document, so a bare 3 opens its item 3; named, the law's
    answer = dialog.respond(Question("wechat", "u5", "义务教育法第三条"))
    assert answer.kind == "item" and "第三条" in answer.text
    for text in ("衡阳工作要点第3条", "衡阳市教育局2020年工作要点第3项是什么"):  # a title holds its year
        plan = dialog.respond(Question("wechat", "u5", text))
        assert plan.kind == "item" and "持续扩增教育资源" in plan.text, text


def test_an_article_of_a_name_that_is_no_document_is_a_question(dialog):
    answer = dialog.respond(Question("wechat", "u6", "我们学校第3条规定是什么"))
    assert answer.kind in ("answer", "abstain")


def test_a_number_the_named_document_lacks_is_said_so(dialog):
    answer = dialog.respond(Question("wechat", "u7", "义务教育法第九十九条"))
    assert answer.kind == "not_found" and "没有第99条" in answer.text
    assert "没有第99项" in dialog.respond(Question("wechat", "u7", "衡阳工作要点第99项")).text


REGULATION = """衡阳市学前教育条例
（2019年10月30日衡阳市第十六届人民代表大会常务委员会第二十三次会议通过）
第一章　总则
第一条　为了促进本市学前教育事业发展，结合本市实际，制定本条例。
第二条　本条例适用于本市行政区域内的学前教育及其管理活动。
第二章　保育与教育
第三条　幼儿园每班幼儿人数，小班不超过二十五人，中班不超过三十人，大班不超过三十五人。
"""


def test_a_documents_title_picks_it_among_the_documents_of_its_city(tmp_path, embedding_cache):
    # 衡阳 names both the plan and the regulation; 学前教育条例 only the regulation
    regulation = tmp_path / "hengyang-preschool-regulation.txt"
    regulation.write_text(REGULATION, encoding="utf-8")
    build_index([SEED, regulation], tmp_path / "data", cache_dir=embedding_cache)
    searcher = open_searcher(tmp_path / "data")
    answer = Dialog(lambda: searcher).respond(Question("wechat", "u8", "衡阳学前教育条例第三条"))
    assert answer.kind == "item" and "小班不超过二十五人" in answer.text
    assert searcher.named_document("衡阳的规定") is None  # a place alone names two documents here


@pytest.mark.parametrize("text", ["第十一條", "義務教育法第十一條"])
def test_traditional_characters_open_the_article_too(dialog, text):
    dialog.respond(Question("wechat", "u9", "义务教育法第一条"))  # that law is the one being read
    answer = dialog.respond(Question("wechat", "u9", text))
    assert answer.kind == "item" and "第十一条" in answer.text
