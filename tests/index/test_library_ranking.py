"""End to end on a small library: the fitted ranker picks the right document among three.

Three real documents from tests/fixtures/corpus/ (the seed plan and excerpts of two laws),
a real index, the real embedder and the shipped ranker model.
"""

from __future__ import annotations

import pytest

from index.build import build_index
from index.search import open_searcher
from tests.conftest import FIXTURES, LAW, SEED

TEACHERS_LAW = FIXTURES / "jiaoshifa.md"


def _searcher(tmp_path_factory, embedding_cache, *paths):
    data = tmp_path_factory.mktemp("library")
    build_index(list(paths), data, cache_dir=embedding_cache)
    return open_searcher(data)


@pytest.fixture(scope="module")
def library(tmp_path_factory, embedding_cache):
    return _searcher(tmp_path_factory, embedding_cache, SEED, LAW, TEACHERS_LAW)


def test_age_of_school_entry_is_article_11_of_the_compulsory_education_law(library):
    result = library.search("孩子几岁上小学", k=3)
    top = result.hits[0]
    assert (top.doc_id, top.item_number) == ("yiwujiaoyufa-2018", 11)
    assert top.ref == "YW11"
    assert any("六周岁" in s for s in top.sentences)


@pytest.mark.parametrize(("question", "doc_id"), [
    ("教师法规定老师有哪些权利", "jiaoshifa"),
    ("义务教育法对免试入学怎么规定的", "yiwujiaoyufa-2018"),
    ("今年幼儿园有啥目标？", "hengyang-2020-work-plan"),
])
def test_a_question_naming_a_document_is_answered_from_it(library, question, doc_id):
    assert library.search(question, k=3).hits[0].doc_id == doc_id


def test_a_documents_name_is_left_out_of_the_words_matched_within_it(library):
    # every article of 教师法 holds 教师; the one on pay (第七条 按时获取工资报酬) holds 工资
    query = library.rank("教师法对老师的工资是怎么规定的").query
    assert "教师法" not in query.terms_text and "工资" in query.tokens
    assert library.library.named_docs(query.text).sum() == 1
    hit = library.search("教师法对老师的工资是怎么规定的", k=1).hits[0]
    assert (hit.doc_id, hit.item_number) == ("jiaoshifa", 7)


@pytest.mark.parametrize(("question", "named"), [
    ("义务教育法对免试入学怎么规定的", True),
    ("中华人民共和国义务教育法第十二条", True),
    ("老师打学生要负什么教师法律责任", False),  # 教师法律 is not 教师法
    ("学校的教师法规汇编在哪看", False),  # nor 教师法规
])
def test_a_name_ending_in_fa_is_not_read_inside_falv_or_fagui(library, question, named):
    lib = library.library
    norm = library.tokenizer.normalize(question)
    assert bool(lib.named_docs(norm).sum()) is named
    assert (lib.without_names(norm) != norm) is named


def test_a_question_that_is_only_a_name_keeps_its_words(library):
    query = library.rank("义务教育法").query
    assert query.tokens and query.terms_text == query.text


def test_refs_are_unique_and_open_their_item(library):
    refs = {}
    for doc in library.documents:
        for item in doc.items:
            hit_ref = library._ref(doc, item.locator)
            assert hit_ref not in refs, (hit_ref, refs.get(hit_ref))
            refs[hit_ref] = (doc.doc_id, item.locator)
    for ref, (doc_id, locator) in refs.items():
        doc, item = library.find_ref(ref)
        assert (doc.doc_id, item.locator) == (doc_id, locator)
    assert library.find_ref("ZZ1") is None and library.find_ref("YW999") is None


def test_this_year_does_not_push_a_law_down(library):
    # 今年 is the plan's 2020; the laws (2018, 2009) are in force whatever their year
    hit = library.search("今年孩子几岁上小学", k=1).hits[0]
    assert hit.doc_id == "yiwujiaoyufa-2018"


def test_scope_searches_one_document_only(library):
    result = library.search("孩子几岁上小学", k=3, scope="hengyang-2020-work-plan")
    assert {h.doc_id for h in result.hits} == {"hengyang-2020-work-plan"}


def test_question_of_words_the_library_never_uses_is_declined(library):
    result = library.search("明天天气怎么样", k=3)
    assert result.abstained and result.confidence <= 0.1


def test_a_question_in_english_is_not_judged_by_the_chinese_vocabulary(library):
    # no word of it is in the library or its English glossary; the embedder reads it
    question = "At what age does compulsory education begin?"
    ranked = library.rank(question)
    assert ranked.query.unseen >= 0.999 and library.knows_words(ranked.query)
    assert not library.knows_words(library.rank("明天天气怎么样").query)


def test_hits_carry_the_full_item_text(library):
    hit = library.search("教师法规定老师有哪些权利", k=1).hits[0]
    assert hit.text and all(s in hit.text for s in hit.sentences)


def test_another_city_lowers_confidence_in_the_citys_plan_not_in_a_law(library):
    local, elsewhere = library.search("衡阳今年幼儿园有啥目标", k=1), library.search("长沙今年幼儿园有啥目标", k=1)
    assert local.hits[0].doc_id == "hengyang-2020-work-plan" and not local.abstained
    assert elsewhere.abstained and elsewhere.confidence < local.confidence
    assert library.search("長沙今年幼兒園有啥目標", k=1).abstained  # traditional script reads the same
    # a national law answers wherever the asker lives
    law = library.search("我在长沙，教师法规定老师有哪些权利", k=1)
    assert law.hits[0].doc_id == "jiaoshifa" and not law.abstained



@pytest.mark.parametrize("question", ["教师工资一个月多少钱", "老师一年有几天假", "幼儿园学费多少钱", "教师几岁退休"])
def test_a_question_declined_for_an_unstated_fact_points_first_to_an_item_stating_it(library, question):
    from index.facts import expected_facts, states_fact

    result = library.search(question, k=10)
    facts = expected_facts(question)
    assert facts and result.abstained
    stating = [all(any(states_fact(s, f) for s in h.sentences) for f in facts) for h in result.hits]
    assert stating[0] or not any(stating)  # when a pointer states what was asked, the first one does


PLAN_WITH_TABLE = FIXTURES / "shaoxing-14th-five-year-plan-2021.txt"  # its 核心指标 table is one cell per line


@pytest.fixture(scope="module")
def library_with_a_table(tmp_path_factory, embedding_cache):
    return _searcher(tmp_path_factory, embedding_cache, SEED, LAW, PLAN_WITH_TABLE)


def test_a_table_cell_naming_the_topic_is_no_answer(library_with_a_table):
    # the cell 小学 is nearer to "孩子几岁上小学" than any article is; it states nothing
    result = library_with_a_table.search("孩子几岁上小学", k=3)
    assert (result.hits[0].doc_id, result.hits[0].item_number) == ("yiwujiaoyufa-2018", 11)
    assert all(len(s) >= 8 for hit in result.hits for s in hit.sentences)


REGULATION = """衡阳市学前教育条例
第一章　总则
第一条　为了促进本市学前教育事业发展，根据《中华人民共和国教育法》等法律、法规，结合本市实际，制定本条例。
第二条　本条例适用于本市行政区域内的学前教育及其管理活动。
本条例所称学前教育，是指对三周岁以上学龄前儿童实施的保育和教育。
第三条　市、县（市、区）人民政府应当将学前教育纳入国民经济和社会发展规划。
第四条　幼儿园每班幼儿人数，小班不超过二十五人，中班不超过三十人，大班不超过三十五人。
第二章　附则
第五条　本条例自2020年3月1日起施行。
"""


@pytest.fixture(scope="module")
def library_with_a_regulation(tmp_path_factory, embedding_cache):
    folder = tmp_path_factory.mktemp("regulation")
    (folder / "hengyang-preschool.txt").write_text(REGULATION, encoding="utf-8")
    return _searcher(tmp_path_factory, embedding_cache, SEED, LAW, folder / "hengyang-preschool.txt")


@pytest.mark.parametrize("question", ["学前教育条例哪天起施行", "衡阳市学前教育条例什么时候开始施行"])
def test_a_question_naming_a_document_is_answered_by_its_item_stating_the_fact(library_with_a_regulation,
                                                                               question):
    result = library_with_a_regulation.search(question, k=3)
    top = result.hits[0]
    assert not result.abstained and (top.doc_id, top.item_number) == ("hengyang-preschool", 5)


def test_a_place_alone_does_not_name_the_document_for_that(library_with_a_regulation):
    lib = library_with_a_regulation.library
    norm = library_with_a_regulation.tokenizer.normalize
    titled = dict(zip((d.doc_id for d in library_with_a_regulation.stored.documents),
                      lib.titled_docs(norm("衡阳幼儿园一个班多少人")), strict=True))
    assert not any(titled.values())
    assert lib.named_docs(norm("衡阳幼儿园一个班多少人")).sum() >= 2  # the plan and the regulation, by place
