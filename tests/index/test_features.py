"""index.features: the evidence the fitted ranker weighs, each piece on small real inputs."""

import numpy as np
import pytest

from index.domain import Document
from index.features import _item_numbers, _numbers, _segment_max, bigrams, doc_aliases, is_dated, is_law
from index.titles import document_kind


def _doc(title: str) -> Document:
    return Document(doc_id="d", title=title, year=None, text="", preamble=(), sections=())


def test_bigrams_are_robust_to_segmentation():
    assert bigrams("义务教育") == ["义务", "务教", "教育"]
    assert set(bigrams("义务 教育")) <= set(bigrams("义务教育")) | {"义务", "教育"}
    assert bigrams("k12 学校") == ["k", "12", "学校"]


@pytest.mark.parametrize(("title", "names"), [
    ("中华人民共和国义务教育法", {"中华人民共和国义务教育法", "义务教育法"}),
    ("衡阳市教育局2020年工作要点", {"衡阳市教育局2020年工作要点", "衡阳市", "衡阳"}),
    ("绍兴市教育事业十四五发展规划", {"绍兴市教育事业十四五发展规划", "绍兴市", "绍兴"}),
    ("衡阳县教育局2020年工作要点", {"衡阳县教育局2020年工作要点", "衡阳县"}),  # not 衡阳: that is the city
    # the narrowest place; a local regulation is also cited without it
    ("浙江省绍兴市学前教育条例", {"浙江省绍兴市学前教育条例", "绍兴市", "绍兴", "学前教育条例"}),
    ("衡阳市中小学校安全管理办法", {"衡阳市中小学校安全管理办法", "衡阳市", "衡阳", "中小学校安全管理办法"}),
])
def test_a_document_is_named_by_its_title_short_title_or_place(title, names):
    assert set(doc_aliases(_doc(title))) == names


@pytest.mark.parametrize(("title", "law"), [
    ("中华人民共和国教师法", True), ("某某市幼儿园管理条例", True), ("某某省学生资助管理办法（试行）", True),
    ("衡阳市教育局2020年工作要点", False), ("关于做好2021年招生工作的通知", False),
])
def test_laws_and_regulations_are_told_from_dated_documents(title, law):
    assert is_law(_doc(title)) is law


def test_numbers_match_quantities_not_digits_inside_dates():
    texts = ["适龄儿童年满6岁", "5月15日起报名", "16岁以上"]
    assert _numbers("孩子15岁了", texts).tolist() == [0.0, 0.0, 0.0]
    assert _numbers("6岁能上学吗", texts).tolist() == [1.0, 0.0, 0.0]
    assert _numbers("有啥规定", texts).tolist() == [0.0, 0.0, 0.0]


def test_segment_max_takes_each_items_best_sentence():
    values = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.4], dtype=np.float32)
    lo, hi = np.array([1, 4, 5]), np.array([4, 5, 5])
    out = _segment_max(values, lo, hi, default=np.array([0.0, 0.0, 0.7], dtype=np.float32))
    assert out.tolist() == pytest.approx([0.9, 0.3, 0.7])


def _dated_library(*titles_years):
    from index.features import Library

    docs = [Document(doc_id=f"d{n}", title=t, year=y, text="", preamble=(), sections=())
            for n, (t, y) in enumerate(titles_years)]
    lib = Library.__new__(Library)  # only the per-document tables other_year reads
    lib.doc_dated = np.array([is_dated(d) for d in docs])
    lib.doc_year = np.array([d.year or 0 for d in docs])
    lib.doc_kind = np.array([document_kind(d.title) for d in docs], dtype=object)
    lib.item_doc = np.arange(len(docs))
    return lib


def _asked(year=None, years_on=None):
    from index.features import Query

    return Query(text="", tokens=(), expansion=(), vector=np.zeros(1), year=year, years_on=years_on)


def test_a_year_asked_puts_other_years_plans_last_but_never_a_law():
    from index.features import other_year

    lib = _dated_library(("某市2020年工作要点", 2020), ("某市2021年工作要点", 2021), ("中华人民共和国教师法", 2009),
                         ("某市十四五发展规划", 2021))
    items = np.arange(4)
    assert other_year(lib, _asked(2020), items).tolist() == [False, True, False, False]
    assert other_year(lib, _asked(2021), items).tolist() == [True, False, False, False]
    assert other_year(lib, _asked(years_on=0), items).tolist() == [True, False, False, False]  # 今年
    assert other_year(lib, _asked(years_on=-1), items).tolist() == [False, True, False, False]  # 去年
    assert not other_year(lib, _asked(2019), items).any()  # no plan of 2019: nothing to prefer
    assert not other_year(lib, _asked(), items).any()


def test_this_year_is_chosen_within_each_kind_of_document():
    from index.features import other_year

    # a 2021 enrolment notice beside the 2020 plan: the plan is still this year's plan
    lib = _dated_library(("某市2020年工作要点", 2020), ("关于做好2021年招生入学工作的通知", 2021),
                         ("关于做好2020年招生入学工作的通知", 2020))
    items = np.arange(3)
    assert other_year(lib, _asked(years_on=0), items).tolist() == [False, False, True]
    assert other_year(lib, _asked(2020), items).tolist() == [False, True, False]


@pytest.mark.parametrize("question", ["学前教育普惠发展", "义务教育阶段 控辍保学", "完全不相关的话"])
def test_gram_counts_are_the_shared_bigrams_of_each_item(searcher, question):
    lib = searcher.library
    grams = bigrams(searcher.tokenizer.normalize(question))
    counts = lib.gram_counts(grams)
    expected = [len(set(grams) & set(bigrams(text))) for text in lib.item_text]
    assert counts.tolist() == expected


@pytest.mark.parametrize("question", ["新建30所中小学", "80%的孩子上普惠园", "50%的幼儿", "没有数字的问题"])
def test_quantities_read_only_where_the_postings_find_them_score_as_reading_every_item(searcher, question):
    lib = searcher.library
    norm = searcher.tokenizer.normalize(question)
    items = np.arange(len(lib.item_text))
    expected = _numbers(norm, lib.item_text).tolist()
    assert _item_numbers(norm, lib, items).tolist() == expected
    assert any(expected) == (question != "没有数字的问题")  # the fixtures do state these quantities


def test_only_a_local_document_is_about_a_place():
    from index.features import _title_place

    assert [p.name for p in _title_place("衡阳市教育局2020年工作要点")] == ["衡阳市"]
    assert [p.name for p in _title_place("浙江省绍兴市学前教育条例")] == ["绍兴市"]  # the narrowest
    assert _title_place("中华人民共和国义务教育法") == ()  # a national law: everywhere
    assert _title_place("《中华人民共和国教师法》") == ()


def test_segment_max_leaves_out_the_skipped_positions_and_falls_back_when_none_is_left():
    values = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.4], dtype=np.float32)
    skip = np.array([False, False, False, True, True, False])
    lo, hi = np.array([1, 4]), np.array([4, 5])
    out = _segment_max(values, lo, hi, default=np.array([0.0, 0.7], dtype=np.float32), skip=skip)
    assert out.tolist() == pytest.approx([0.5, 0.7])
