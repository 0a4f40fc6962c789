"""index.refs: references a user can type, unique across the library and stable across versions."""

import pytest

from index.build import build_index
from index.domain import Document, Section, WorkItem
from index.refs import REF, document_codes, item_ordinal
from index.search import open_searcher
from tests.conftest import LAW


def _doc(doc_id: str, title: str, numbers: list[int]) -> Document:
    items = tuple(WorkItem(number=n, title=f"t{n}", label=f"{n}.", locator=f"{k}", text="x", sentences=(),
                           start=0, end=1) for k, n in enumerate(numbers, start=1))
    return Document(doc_id=doc_id, title=title, year=None, text="", preamble=(),
                    sections=(Section(number="一", title="s", items=items),))


def test_codes_are_pinyin_initials_of_the_short_title():
    docs = [_doc("yw", "中华人民共和国义务教育法", [1]), _doc("hy", "衡阳市教育局2020年工作要点", [1])]
    assert document_codes(docs) == {"yw": "YW", "hy": "HY"}


def test_colliding_codes_stay_unique_and_do_not_depend_on_order():
    a, b = _doc("a", "义务教育法", [1]), _doc("b", "义务教育条例", [1])
    codes = document_codes([a, b])
    assert len(set(codes.values())) == 2
    assert document_codes([b, a]) == codes


def test_items_go_by_number_unless_numbering_restarts():
    law = _doc("law", "某法", [1, 2, 3])
    plan = _doc("plan", "某规划", [1, 2, 1, 2])
    assert [item_ordinal(law, i) for i in law.items] == ["1", "2", "3"]
    assert [item_ordinal(plan, i) for i in plan.items] == ["1", "2", "3", "4"]


def test_reference_pattern_reads_what_users_type():
    assert REF.fullmatch("YW11").groups() == ("YW", "11")
    assert REF.fullmatch("SX 23").groups() == ("SX", "23")
    assert REF.fullmatch("11") is None


def test_hundreds_of_similar_titles_still_get_unique_codes():
    docs = [_doc(f"d{n}", f"衡阳市教育局{2000 + n}年工作要点", [1]) for n in range(300)]
    codes = document_codes(docs)
    assert len(set(codes.values())) == 300
    assert all(REF.fullmatch(f"{c}12") for c in codes.values())


def test_kept_codes_win_over_the_doc_id_order():
    old, new = _doc("yiwujiaoyufa", "义务教育法", [1]), _doc("a-enrolment", "义务教育学校招生办法", [1])
    assert document_codes([old, new]) == {"a-enrolment": "YW", "yiwujiaoyufa": "YWJ"}
    assert document_codes([old, new], keep={"yiwujiaoyufa": "YW"}) == {"yiwujiaoyufa": "YW", "a-enrolment": "YWJ"}


@pytest.mark.parametrize("keep", [{"gone": "YW"}, {"yw": "yw1"}, {"yw": 7}, {"yw": "HY", "hy": "HY"}])
def test_a_kept_code_that_is_gone_invalid_or_taken_is_assigned_afresh(keep):
    docs = [_doc("yw", "中华人民共和国义务教育法", [1]), _doc("hy", "衡阳市教育局2020年工作要点", [1])]
    codes = document_codes(docs, keep=keep)
    assert len(set(codes.values())) == 2 and all(REF.fullmatch(f"{c}1") for c in codes.values())


def test_a_reference_given_out_still_opens_its_item_after_a_colliding_document_is_added(
        tmp_path, embedding_cache):
    # the new document's doc_id sorts first and its initials (YWJ) start like 义务教育法's (YW):
    # assigned afresh it would take YW, and YW11 would open its item 11 instead of 第十一条
    enrolment = tmp_path / "a-enrolment.txt"
    enrolment.write_text("义务教育学校招生办法\n一、招生对象\n1. 年满6周岁的适龄儿童。\n2. 招生不得举行考试。\n",
                         encoding="utf-8")
    data = tmp_path / "data"
    build_index([LAW], data, cache_dir=embedding_cache)
    assert _opened(open_searcher(data), "YW11") == ("yiwujiaoyufa-2018", 11)
    build_index([enrolment, LAW], data, cache_dir=embedding_cache)
    searcher = open_searcher(data)
    assert _opened(searcher, "YW11") == ("yiwujiaoyufa-2018", 11)
    assert _opened(searcher, "YWJ1") == ("a-enrolment", 1)
    fresh = tmp_path / "fresh"  # a library built from nothing assigns in doc_id order
    build_index([enrolment, LAW], fresh, cache_dir=embedding_cache)
    assert _opened(open_searcher(fresh), "YW1") == ("a-enrolment", 1)


def _opened(searcher, ref: str) -> tuple[str, int]:
    doc, item = searcher.find_ref(ref)
    return doc.doc_id, item.number
