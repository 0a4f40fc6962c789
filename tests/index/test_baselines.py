"""index.baselines: the plain rankers the product's figures are printed beside, on the real seed index."""

from __future__ import annotations

import pytest

from index.baselines import BASELINES, Baselines


@pytest.fixture(scope="module")
def baselines(searcher):
    return Baselines(searcher)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_finds_an_item_named_in_its_own_words(baselines, name):
    out = baselines.outcome(name, "近视眼防控工作", k=3)
    assert not out.abstained  # neither ever declines
    assert out.items[0].number == 7  # 7. 促进学生全面发展, which names 近视眼防控
    assert "近视眼防控" in out.items[0].shown


def test_baselines_quote_as_many_sentences_as_the_product_at_most(baselines, searcher):
    most = searcher.settings.max_sentences
    for name in BASELINES:
        for item in baselines.outcome(name, "幼儿园有什么目标", k=5).items:
            assert 1 <= len(item.shown.split("\n")) <= most


def test_bm25_returns_nothing_for_words_no_item_uses(baselines):
    assert baselines.outcome("bm25", "火星天气", k=3).items == ()


def test_scope_keeps_one_document(baselines):
    assert baselines.outcome("dense", "幼儿园", k=3, scope="no-such-document").items == ()
