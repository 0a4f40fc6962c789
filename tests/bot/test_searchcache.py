"""bot/searchcache.py: near-identical questions share one search, over the real index."""

from __future__ import annotations

import pytest

from bot.searchcache import CachedSearcher, question_key


@pytest.mark.parametrize(("spellings", "key"), [
    (["大班额怎么解决", "大班额，怎么解决？", "  大班額 怎麼解決 ！！", "大班额怎么解决。"], "大班额怎么解决"),
    (["ＡＢＣ学校", "abc 学校"], "abc学校"),
    (["What about teacher-training?", "what about teacher training"], "what about teacher training"),
])
def test_spellings_of_one_question_meet(spellings, key):
    assert {question_key(s) for s in spellings} == {key}


@pytest.mark.parametrize("text", ["12-2", "3.5万元", "50%的幼儿园", "2020/21学年", "8:30上课吗"])
def test_numbers_keep_their_punctuation(text):
    assert question_key(text) == text


def test_near_identical_questions_share_one_result(searcher):
    cached = CachedSearcher(searcher)
    first = cached.search("今年幼儿园有什么目标？", k=3)
    assert cached.search("今年幼兒園有什麼目標", k=3) is first  # traditional, no punctuation: the same entry
    assert first.hits == searcher.search("今年幼儿园有什么目标？", k=3).hits  # what the searcher finds for it
    assert cached.search("今年幼儿园有什么目标", k=1) is not first  # another k is another search
    assert cached.version == searcher.version and cached.documents == searcher.documents


def test_the_cache_is_bounded(searcher):
    cached = CachedSearcher(searcher, size=2)
    first = cached.search("大班额")
    cached.search("课后服务")
    cached.search("控辍保学")
    assert cached.search("大班额") is not first  # the oldest entry was dropped
