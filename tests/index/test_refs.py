"""index.refs: references a user can type, unique across the library and stable across versions."""

from index.domain import Document, Section, WorkItem
from index.refs import REF, document_codes, item_ordinal


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
