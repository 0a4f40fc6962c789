"""Reading a short follow-up ("那高中呢？", "还有呢", "具体怎么做") against the same user's previous
question: whether a message is one (:func:`is_followup`), what is left of it without filler words
(:func:`content`), and what to search for it (:func:`plan_for` → :class:`Plan`). The dialog runs
the plan; the helpers here only read text and pick among hits, they never search.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.quotes import sentences
from bot.sessions import Session
from index.domain import Hit
from index.search import SearchResult

_FOLLOWUP_START = ("那么", "那", "还有", "另外", "and", "whatabout", "howabout", "what about", "how about")
# Words that carry no topic: what is left of a message without them is its content.
_CJK_FILLERS = sorted([
    "那么", "那", "还有", "另外", "以及", "和", "与", "呢", "吗", "吧", "啊", "呀", "嘛", "哦", "的",
    "地", "得", "了", "啥", "什么", "怎么样", "怎么", "怎样", "如何", "哪些", "哪个", "具体", "详细",
    "一些", "做", "办", "搞", "要", "会", "有", "是", "这", "个", "些", "请问", "请", "问", "一下", "我",
    "你", "您", "们", "想", "知道", "关于", "方面", "情况", "说说", "讲讲", "介绍", "展开", "全文", "原文",
    "操作", "落实",
], key=len, reverse=True)  # longest first, so 怎么样 goes before 怎么
_LATIN_FILLERS = frozenset({
    "and", "what", "about", "how", "the", "a", "an", "is", "are", "more", "else", "so", "then",
    "ok", "okay", "please", "tell", "me", "of", "it", "details", "detail", "full", "text", "do", "i", "we",
})
_FILLER_RE = re.compile("|".join(re.escape(w) for w in _CJK_FILLERS))
_NOT_WORD = re.compile(r"[\W_]+")
CJK = re.compile(r"[\u4e00-\u9fff]")  # Chinese characters (the dialog tells a message's language by them too)
_ASKING = ("具体", "详细", "全文", "原文", "展开", "说说", "怎么", "如何", "怎样", "哪些", "什么", "其他", "其它",
           "别的", "how", "what", "more")
_DETAILS = ("具体", "详细", "详情", "细节", "全文", "原文", "展开", "怎么做", "怎么办", "如何做", "怎样做", "怎么弄",
            "怎么操作", "如何操作", "怎么落实", "如何落实", "detail", "how", "full")
FOLLOWUP_MAX_CHARS = 8
FOLLOWUP_MAX_WORDS = 5
FOLLOWUP_POOL = 8  # items compared between a follow-up's own search and the one with its topic


@dataclass(frozen=True)
class Plan:
    """What to search for one question.

    ``mode`` is "new" (a question of its own), "refine" (a follow-up on the topic), "more"
    (the same topic, other items) or "details" (the item answered last, in full); ``focus``
    holds a follow-up's own subject.
    """

    query: str
    focus: str = ""
    mode: str = "new"


#: Greetings, as a whole message (the dialog answers them in one line) or before a question.
GREETINGS = r"你好|您好|你们好|大家好|哈喽|嗨|在吗|在不在|有人吗|hi|hello|hey|早上好|下午好|晚上好"
# A greeting before the question ("你好，…", "老师您好！…") says nothing of its subject, yet it moves
# the question's embedding: it is left out of what is searched.
_GREETING = re.compile(rf"^\s*(?:(?:老师|校长)?(?:{GREETINGS})|打扰(?:一下|了))(?:老师|呀|啊)?[\s,，!！~～。.、]+",
                       re.I)


def without_greeting(text: str) -> str:
    """``text`` without the greetings it opens with (a greeting alone stays as it is)."""
    while (m := _GREETING.match(text)) and text[m.end():].strip():
        text = text[m.end():]
    return text


def plan_for(text: str, session: Session | None) -> Plan | None:
    """How to search for ``text`` given the user's session; None when there is nothing to search."""
    text = without_greeting(text)
    if session and session.topic and is_followup(text):
        if content(text):  # "那高中呢": a new subject on the old topic, asked as the topic's question
            return Plan(_join(session.topic, text), text.strip(), "refine")
        if session.answered and asks_for_details(text):  # "具体怎么做": the item answered, in full
            return Plan(session.topic, mode="details")
        # "具体怎么做", "还有呢": no subject of their own, so the last one stands
        mode = "more" if _asks_for_more(text) else "refine"
        return Plan(_join(session.topic, session.focus, "" if mode == "more" else text), session.focus, mode)
    return Plan(text.strip()) if content(text) else None


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p.strip())


def content(text: str) -> str:
    """What is left of ``text`` without punctuation and filler words (empty: nothing to search)."""
    words = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text))
    # latin fillers are whole words only ("what" yes, "whatever" no); Chinese has no spaces to go by
    words = " ".join(w for w in words.split() if w.lower() not in _LATIN_FILLERS)
    return _NOT_WORD.sub("", _FILLER_RE.sub("", words))


def is_followup(text: str) -> bool:
    """Whether ``text`` reads as an elliptical follow-up: short, and opening with 那/还有/what about,
    ending with 呢, or asking ("具体怎么做") with no content words of its own."""
    compact = _NOT_WORD.sub("", unicodedata.normalize("NFKC", text)).lower()
    if not compact:  # an empty or punctuation-only message is not a follow-up: it gets "请换个说法"
        return False
    latin_words = len(_NOT_WORD.sub(" ", text).split()) if not CJK.search(text) else 0
    short = len(compact) <= FOLLOWUP_MAX_CHARS if CJK.search(compact) else latin_words <= FOLLOWUP_MAX_WORDS
    if not short:
        return False
    spaced = " ".join(_NOT_WORD.sub(" ", text.lower()).split())
    opens = compact.startswith(_FOLLOWUP_START) or spaced.startswith(_FOLLOWUP_START)
    return opens or compact.endswith("呢") or (not content(text) and compact.startswith(_ASKING))


def asks_for_details(text: str) -> bool:
    """Whether a follow-up with no subject of its own asks how, or for the whole item ("具体怎么做",
    "详细说说", "全文"), rather than for other items ("还有呢")."""
    compact = _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())
    return not _asks_for_more(text) and any(word in compact for word in _DETAILS)


def whole_words(terms: list[str]) -> list[str]:
    """``terms`` without those inside a longer one (jieba's search mode adds the parts of a word)."""
    words = [t for t in dict.fromkeys(terms) if len(t) >= 2 and content(t)]
    return [t for t in words if not any(t != other and t in other for other in words)]


def quoting(hit: Hit, terms: tuple[str, ...], norm: Callable[[str], str]) -> Hit:
    """``hit`` quoting a sentence that names the new subject, when its chosen ones do not."""
    if any(mentions(norm(s), terms) for s in hit.sentences):
        return hit
    naming = next((s for s in sentences(hit.text) if mentions(norm(s), terms)), None)
    if naming is None:
        return hit
    return replace(hit, sentences=tuple(sorted({*hit.sentences[:1], naming}, key=hit.text.find)))


def mentions(text: str, terms: tuple[str, ...]) -> bool:
    """Whether ``text`` holds any of a follow-up's subject ``terms``."""
    return any(term in text for term in terms)


def _asks_for_more(text: str) -> bool:
    compact = _NOT_WORD.sub("", text.lower())
    return compact.startswith(("还有", "另外", "and", "more", "else")) or compact in ("其他", "其它", "别的")


def drop_shown(result: SearchResult, shown: tuple[tuple[str, str], ...]) -> SearchResult:
    """``result`` without the items already ``shown`` ("还有呢"); with none left it abstains."""
    seen = set(shown)
    hits = tuple(h for h in result.hits if h.address.key not in seen)
    confidence = hits[0].confidence if hits else 0.0
    return replace(result, hits=hits, confidence=confidence, abstained=result.abstained or not hits)
