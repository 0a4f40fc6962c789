"""index.quotes: which sentences of an item an answer quotes."""

import numpy as np
import pytest

from index.domain import Chunk
from index.quotes import _is_heading, best_sentences


def _item(title: str, label: str, sentences: list[str]) -> list[Chunk]:
    def chunk(kind: str, text: str) -> Chunk:
        return Chunk(chunk_id=text, doc_id="d", doc_title="t", year=None, section="一", item_number=1,
                     item_title=title, item_locator="1", kind=kind, text=text, start=0, end=1, item_label=label)
    return [chunk("item", "".join(sentences)), *(chunk("sentence", s) for s in sentences)]


def test_the_nearest_sentences_are_quoted_in_the_items_order():
    chunks = _item("t", "1.", ["甲。", "乙。", "丙。", "丁。"])
    cosines = np.array([0.80, 0.95, 0.50, 0.90], dtype=np.float32)
    assert best_sentences(chunks, cosines, np.zeros(4, bool), limit=3) == ("甲。", "乙。", "丁。")
    assert best_sentences(chunks, cosines, np.zeros(4, bool), limit=1) == ("乙。",)


def test_far_sentences_are_left_out_however_many_may_be_quoted():
    chunks = _item("t", "1.", ["甲。", "乙。", "丙。"])
    cosines = np.array([0.9, 0.1, 0.2], dtype=np.float32)  # scaled: 1.0, 0.0, 0.125
    assert best_sentences(chunks, cosines, np.zeros(3, bool), limit=3) == ("甲。",)


def test_a_plan_items_title_and_a_stub_are_not_quoted_but_a_laws_first_sentence_is():
    plan = _item("办好学前教育", "1.", ["办好学前教育。", "新增学位5000个。", "幼儿园"])
    cosines = np.array([0.95, 0.90, 0.94], dtype=np.float32)
    stubs = np.array([False, False, True])
    assert best_sentences(plan, cosines, stubs, limit=1) == ("新增学位5000个。",)
    law = _item("办好学前教育", "第三条", ["办好学前教育。", "新增学位5000个。"])
    assert best_sentences(law, cosines[:2], stubs[:2], limit=1) == ("办好学前教育。",)


def test_an_item_without_sentences_is_quoted_whole():
    head = _item("t", "1.", ["附件一览"])[:1]  # a chunk of its own, no sentence chunks after it
    assert best_sentences(head, np.zeros(0, np.float32), np.zeros(0, bool), limit=3) == ("附件一览",)


@pytest.mark.parametrize(("title", "heading"), [
    ("办好普惠优质学前教育", True),
    ("重大项目:改扩建154个学校项目", True),
    ("对原备案的线上学科类培训机构，改为审批制", False),  # a notice's opening rule is content
    ("各县市区不再审批新的面向义务教育阶段学生的学科类校外培训机构", False),
    ("培训结束时间不得晚于20:30，线上培训每课时不…", False),
])
def test_only_a_heading_title_is_kept_out_of_the_quote(title, heading):
    assert _is_heading(title) is heading
