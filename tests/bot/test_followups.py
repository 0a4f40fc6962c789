"""bot.followups: reading a short follow-up against the user's previous question."""

import pytest

from bot import followups
from bot.followups import Plan, content, plan_for, without_greeting
from bot.quotes import sentences
from bot.sessions import Session
from index.search import SearchResult
from tests.bot.test_quotes import ITEM_27, _hit

TOPIC = Session(topic="今年幼儿园有啥目标？", answered=("hy", "12"))


@pytest.mark.parametrize(("text", "expected"), [
    ("那高中呢？", True), ("还有呢", True), ("具体怎么做", True), ("what about high school?", True),
    ("义务教育呢", True),
    ("今年幼儿园有啥目标？", False),  # a question of its own
    ("那么全市中小学校的大班额问题今年打算怎么解决", False),  # too long to be elliptical
    ("", False), ("？？", False),
])
def test_is_followup(text, expected):
    assert followups.is_followup(text) is expected


def test_content_drops_punctuation_and_fillers_only():
    assert content("那高中呢？") == "高中"
    assert content("还有呢") == ""
    assert content("具体怎么做") == ""
    assert content("What about the fees?") == "fees"
    assert content("whatever") == "whatever"  # latin fillers are whole words


def test_plan_for_a_new_subject_refines_the_topic():
    assert plan_for("那高中呢？", TOPIC) == Plan("今年幼儿园有啥目标？ 那高中呢？", "那高中呢？", "refine")


def test_plan_for_details_and_more():
    assert plan_for("具体怎么做", TOPIC) == Plan("今年幼儿园有啥目标？", mode="details")
    assert plan_for("还有呢", TOPIC).mode == "more"
    no_answer = Session(topic="今年幼儿园有啥目标？")
    assert plan_for("具体怎么做", no_answer).mode == "refine"  # nothing answered to open in full


def test_plan_for_without_a_session_or_content():
    assert plan_for("那高中呢？", None) == Plan("那高中呢？")
    assert plan_for("还有呢", None) is None  # nothing to search
    assert plan_for("大班额", TOPIC) == Plan("大班额")  # a question of its own starts afresh


def test_asks_for_details_tells_how_from_more():
    assert followups.asks_for_details("详细说说") and followups.asks_for_details("具体怎么做")
    assert not followups.asks_for_details("还有呢") and not followups.asks_for_details("还有具体的吗")


def test_whole_words_keep_the_longest_terms():
    assert followups.whole_words(["学前", "学前教育", "教育", "幼儿园", "呢", "学前教育"]) == ["学前教育", "幼儿园"]


def test_quoting_prefers_a_sentence_naming_the_new_subject():
    parts = sentences(ITEM_27)
    naming = next(s for s in parts[3:] if "阳光服务" in s)
    hit = _hit(chosen=(parts[1], parts[2]))
    quoted = followups.quoting(hit, ("阳光服务",), str)
    assert quoted.sentences == (parts[1], naming)  # the best one kept, the one naming it added, in text order
    assert followups.mentions(naming, ("阳光服务",))
    assert followups.quoting(hit, ("火星",), str) is hit  # nothing names it: the search's choice stands
    assert followups.quoting(quoted, ("阳光服务",), str) is quoted  # already quoted


def test_drop_shown_leaves_the_rest_or_abstains():
    first, second = _hit(number=27, confidence=0.9), _hit(number=26, confidence=0.6)
    result = SearchResult("q", (first, second), 0.9, False)
    rest = followups.drop_shown(result, (first.address.key,))
    assert rest.hits == (second,) and rest.confidence == 0.6 and not rest.abstained
    none_left = followups.drop_shown(result, (first.address.key, second.address.key))
    assert none_left.hits == () and none_left.abstained


@pytest.mark.parametrize(("text", "searched"), [
    ("你好，今年幼儿园有啥目标？", "今年幼儿园有啥目标？"),
    ("老师您好！打扰一下，孩子几岁上小学", "孩子几岁上小学"),
    ("Hi, what age do children start school?", "what age do children start school?"),
    ("你好", "你好"),  # a greeting alone is smalltalk, answered before any search
    ("你好好学习的规定有吗", "你好好学习的规定有吗"),  # no greeting: 你好 runs on into the question
])
def test_a_greeting_is_not_searched(text, searched):
    assert without_greeting(text) == searched


def test_plan_for_a_greeted_question_searches_the_question():
    assert plan_for("您好，幼儿园收费标准？", None) == Plan("幼儿园收费标准？")
