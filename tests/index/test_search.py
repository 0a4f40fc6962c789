"""Hybrid search over the real seed index: what a parent or teacher would notice."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SEED

TEXT = SEED.read_text(encoding="utf-8")


def test_kindergarten_question_finds_item_12(searcher):
    result = searcher.search("今年幼儿园有啥目标？", k=3)
    assert not result.abstained
    top = result.hits[0]
    assert top.item_number == 12
    assert top.doc_title == "衡阳市教育局2020年工作要点"
    assert top.section.startswith(("五、", "二、"))


@pytest.mark.parametrize(
    ("question", "item"),
    [
        ("大班额谁来管？", 3),
        ("师德考核结果用在哪？", 9),
        ("校外培训机构还让开吗", 21),
        ("残疾孩子能上学吗", 15),
        ("How many new primary and secondary schools will be built?", 3),
        ("幼兒園", 12),  # traditional characters
    ],
)
def test_colloquial_questions_reach_the_right_item(searcher, question, item):
    assert item in [h.item_number for h in searcher.search(question, k=3).hits]


def test_sentences_are_quoted_verbatim(searcher):
    for question in ("今年新建几所中小学", "老师工资有保障吗", "校园安全抓哪些", "da ban e"):
        for hit in searcher.search(question, k=3).hits:
            assert hit.sentences
            assert all(sentence in TEXT for sentence in hit.sentences)


def test_numbers_stay_exact(searcher):
    hit = searcher.search("今年要新建几所中小学？", k=1).hits[0]
    assert any("新改扩建公办中小学30所" in s for s in hit.sentences)


@pytest.mark.parametrize(
    "question", ["校服一套多少钱", "明天天气怎么样", "市教育局办公地址在哪里", "怎么给孩子办转学手续",
                 "学区划分去哪里查"]
)
def test_unanswerable_questions_abstain_with_suggestions(searcher, question):
    result = searcher.search(question, k=3)
    assert result.abstained
    # the nearest items, for suggestions: three different ones, best first, quoted verbatim
    assert len({h.item_locator for h in result.hits}) == len(result.hits) == 3
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.sentences and all(s in TEXT for s in h.sentences) for h in result.hits)


def test_a_decline_names_the_fact_the_top_item_does_not_give(searcher):
    assert searcher.search("校服一套多少钱", k=3).unstated == ("price",)
    assert searcher.search("明天天气怎么样", k=3).unstated == ()  # declined for its words, not a fact


@pytest.mark.parametrize("question", ["", "   ", "？？！", "的了吗"])
def test_empty_question_is_a_normal_abstention(searcher, question):
    result = searcher.search(question)
    assert result.abstained
    if not question.strip(" ？！"):  # nothing but spaces and punctuation: nothing to suggest either
        assert (result.hits, result.confidence) == ((), 0.0)


def test_confidence_is_calibrated_between_zero_and_one(searcher):
    good = searcher.search("芙蓉学校项目建设")
    bad = searcher.search("火星上有没有幼儿园")
    assert 0.0 <= bad.confidence < good.confidence <= 1.0


def test_find_item_by_locator(searcher):
    doc, item = searcher.find_item("12")
    assert item.title == "办好普惠优质学前教育"
    assert searcher.find_item("99") is None


def test_very_long_question_does_not_crash(searcher):
    result = searcher.search("幼儿园" * 5000, k=3)
    assert result.hits


def test_a_fact_asked_must_be_in_the_quoted_sentences_not_anywhere_in_the_item(searcher):
    from index.facts import expected_facts, states_fact

    question = "中职学校的就业率是多少"
    (rate,) = expected_facts(question)
    ranked = searcher.rank(question)
    top = searcher.ranked_item(int(ranked.items[0]), ranked)
    assert states_fact(top.text, rate)  # the top item states some percentage …
    assert not any(states_fact(s, rate) for s in top.shown.split("\n"))  # … but not in what is quoted
    result = searcher.search(question, k=3)
    assert result.abstained
    # … so it is declined, and the first pointer is an item whose quoted sentences do state a rate
    assert any(states_fact(s, rate) for s in result.hits[0].sentences)


def test_an_hnsw_index_ranks_as_the_exact_one(searcher, tmp_path, monkeypatch, embedding_cache):
    # below HNSW_THRESHOLD one product with every vector replaces FAISS; above it FAISS's HNSW
    # graph finds the dense candidates: on a small index both must find the same ones and rank alike
    from index import build
    from index.search import Searcher, SearchSettings, open_searcher
    from tests.conftest import CORPUS

    monkeypatch.setattr(build, "HNSW_THRESHOLD", 1)
    build.build_index([CORPUS], tmp_path, cache_dir=embedding_cache)
    loaded = open_searcher(tmp_path)
    few = SearchSettings(dense_candidates=15)
    hnsw = Searcher(loaded.stored, embedder=loaded.embedder, tokenizer=loaded.tokenizer, settings=few)
    exact = Searcher(searcher.stored, embedder=searcher.embedder, tokenizer=searcher.tokenizer, settings=few)
    assert hnsw.stored.manifest["faiss"] == "hnsw" and exact.stored.manifest["faiss"] == "flat"
    for question in ("今年幼儿园有啥目标？", "师德考核结果用在哪", "孩子几岁上小学", "火星上有学校吗"):
        vector = exact.query_vector(question)
        best = np.argsort(-(np.asarray(exact.stored.vectors) @ vector), kind="stable")[:15]
        found = set(hnsw._dense_candidates(vector).tolist())
        assert len(found & set(best.tolist())) >= 13, question  # HNSW is approximate, not blind
        a, b = exact.rank(question), hnsw.rank(question)
        assert a.items[:3].tolist() == b.items[:3].tolist(), question
        np.testing.assert_allclose(a.features[:3], b.features[:3], atol=1e-5)


def test_an_index_of_an_earlier_recipe_is_served_with_a_warning(searcher, caplog):
    from index.chunks import warn_if_built_otherwise

    warn_if_built_otherwise(searcher.stored.manifest)  # built by this release: nothing to say
    assert "earlier release" not in caplog.text
    warn_if_built_otherwise({k: v for k, v in searcher.stored.manifest.items() if k != "vectors"})
    assert "earlier release" in caplog.text and "policybot index build" in caplog.text
