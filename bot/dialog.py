"""The conversation: turn one user message into one :class:`~bot.domain.Answer`.

A message is first matched against the command registry (``帮助``, ``目录``, ``12``,
``第十二条``, ``12-2``); anything else is a question. A short follow-up ("那高中呢？",
"还有呢", "具体怎么做") is read against the same user's previous question, kept in
:class:`~bot.sessions.SessionMemory` for a few minutes: its new subject is searched
within that topic, or the topic is searched again for more items. The search result
becomes an answer that quotes the documents, or an honest "not covered" with the
nearest items.
Channels reach this module only through ``bot.service``; they never see the index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot import compose
from bot.domain import UNLIMITED, Answer, Limit, Question
from bot.faq import FaqMatcher
from bot.phrases import PHRASES
from bot.sessions import Session, SessionKey, SessionMemory
from index.domain import Document, Hit, WorkItem
from index.numerals import cn_int
from index.rank import NEUTRAL_THRESHOLD
from index.search import Searcher, SearchResult

if TYPE_CHECKING:
    from bot.storage.curation import Curation

DEFAULT_WELCOME = "您好！我是政策文件问答助手，可以帮您查找教育政策文件的原文规定。"
MAX_QUESTION_CHARS = 1000  # the web API refuses longer; chat channels are cut to it


@dataclass(frozen=True)
class DialogSettings:
    """How the dialog behaves; every field has a working default."""

    followup_ttl_s: float = 300.0  # how long a user's previous question stays the topic of a follow-up
    max_items: int = 3  # work items named in one answer (and suggested when abstaining)
    max_sentences: int = 3  # sentences quoted from the best item (items after it are one-line pointers)
    contact_text: str = ""  # where to turn when the documents do not answer: POLICYBOT_CONTACT_TEXT
    welcome_text: str = DEFAULT_WELCOME  # sent with the help text when a user subscribes
    max_users: int = 10_000  # users whose follow-up context is kept (least recent dropped first)
    search_k: int = 3  # items asked from the searcher per question
    # Items after the first are quoted only this sure (a Hit's calibrated confidence); the same
    # bar decides whether a follow-up's re-ranked result still answers: the ranker's even odds.
    min_confidence: float = NEUTRAL_THRESHOLD

    def __post_init__(self) -> None:
        for name in ("followup_ttl_s", "max_items", "max_sentences", "max_users", "search_k"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DialogSettings.{name} must be positive, got {getattr(self, name)!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"DialogSettings.min_confidence must be within 0..1, got {self.min_confidence!r}")


Handler = Callable[["Dialog", Question, re.Match, Limit], Answer]
#: (pattern, handler) in match order; a message that matches none is a question.
COMMANDS: list[tuple[re.Pattern[str], Handler]] = []


def command(pattern: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for messages that fully match ``pattern`` (after normalising)."""

    def register(handler: Handler) -> Handler:
        COMMANDS.append((re.compile(pattern, re.IGNORECASE), handler))
        return handler

    return register


class Dialog:
    """Answers messages from any channel; one instance serves all users and threads."""

    def __init__(self, searcher_provider: Callable[[], Searcher], *, settings: DialogSettings | None = None,
                 memory: SessionMemory | None = None, curation: Curation | None = None) -> None:
        self.settings = settings or DialogSettings()
        self._searcher = searcher_provider
        # the admins' FAQ and the users' ratings; None (the CLI without a database, tests): neither
        self.curation = curation
        self.faq = FaqMatcher(curation) if curation is not None else None
        if memory is None:  # not `memory or …`: an empty memory is falsy (it has a length)
            memory = SessionMemory(ttl_s=self.settings.followup_ttl_s, max_users=self.settings.max_users)
        self.memory = memory

    def respond(self, question: Question, limit: Limit = UNLIMITED) -> Answer:
        """The reply to ``question``, within ``limit``; never raises on odd input."""
        if len(question.text) > MAX_QUESTION_CHARS:
            # A pasted essay is not a question; cutting it keeps one message from stalling a worker.
            question = replace(question, text=question.text[:MAX_QUESTION_CHARS])
        text = normalize(question.text)
        for pattern, handler in COMMANDS:
            match = pattern.fullmatch(text)
            if match:
                return handler(self, question, match, limit)
        return self._ask(question, limit)

    def welcome(self, limit: Limit = UNLIMITED) -> str:
        """The greeting for a new subscriber: the welcome text and the help text."""
        return compose.render("welcome", compose.Draft(limit=limit, intro=self.settings.welcome_text)).text

    # -- questions --------------------------------------------------------------------------

    def _ask(self, question: Question, limit: Limit) -> Answer:
        key = _key(question)
        session = self.memory.get(key)
        lang = language(question.text)
        plan = _plan(question.text, session)
        if plan is None:
            return compose.render("empty", compose.Draft(limit=limit, lang=lang))
        if plan.mode == "new" and self.faq and (match := self.faq.match(question.text, self._searcher())):
            answer = compose.render("faq", self._draft(limit, lang, faq=match))
            self.memory.update(key, topic=question.text.strip(), focus="", shown=(), answered=None)
            return replace(answer, extra={**answer.extra, "query": plan.query, "followup": False})
        if plan.mode == "details" and (found := self._answered_item(session)):
            doc, item = found
            answer = compose.render("item", compose.Draft(limit=limit, document=doc, item=item))
            return replace(answer, extra={**answer.extra, "query": plan.query, "followup": True})
        result = self._search(plan, session, question.scope)
        kind = "abstain" if result.abstained or not result.hits else "answer"
        # "还有呢" that finds nothing new is not a question the documents fail to cover
        intro = PHRASES[lang].no_more if kind == "abstain" and plan.mode == "more" else ""
        answer = compose.render(kind, self._draft(limit, lang, result=result, intro=intro))
        self._remember(key, question.text, plan, answer)
        return replace(answer, extra={**answer.extra, "query": plan.query, "followup": plan.mode != "new"})

    def _search(self, plan: _Plan, session: Session | None, scope: str | None = None) -> SearchResult:
        """Search for ``plan``; "还有呢" leaves out the items already shown."""
        shown = session.shown if plan.mode == "more" and session else ()
        k = self.settings.search_k + len(shown)
        search = self._refine if plan.focus else self._plain
        result = search(plan.query, plan.focus, k, scope)
        if shown:
            result = _drop_shown(result, shown)
        if plan.mode == "new":
            return result
        # a follow-up's result is re-ranked or cut here, so its abstention is decided here too
        weak = not result.hits or result.hits[0].confidence < self._searcher().abstain_below
        return replace(result, abstained=result.abstained or weak)

    def _plain(self, query: str, focus: str, k: int, scope: str | None = None) -> SearchResult:
        return self._searcher().search(query, k=k, scope=scope)

    def _refine(self, query: str, focus: str, k: int, scope: str | None = None) -> SearchResult:
        """Items for a follow-up's new subject (``focus``) asked as the topic's question (``query``):
        of the items that question finds, those that name the new subject (its words or their
        synonyms). None of them: the documents do not say it for that subject, so it declines
        rather than answering the topic again."""
        searcher = self._searcher()
        both = searcher.search(query, k=max(FOLLOWUP_POOL, k), scope=scope)
        terms = self._subject_terms(focus)
        if not terms:  # a subject with no words the library could match: the topic has to carry it
            return replace(both, hits=both.hits[:k])
        norm = searcher.tokenizer.normalize
        hits = [_quoting(h, terms, norm) for h in both.hits if _names(norm(h.text), terms)]
        confidence = hits[0].confidence if hits else 0.0
        return SearchResult(query, tuple(hits[:k]), confidence, both.abstained or not hits)

    def _subject_terms(self, focus: str) -> tuple[str, ...]:
        """The words of a follow-up's subject and the document terms they map to (幼儿园 → 学前教育):
        whole words only, two characters or more: a part (教育 of 学前教育, 城) would match
        unrelated words (城乡)."""
        tokenizer = self._searcher().tokenizer
        return (*whole_words(tokenizer.tokens(focus)), *whole_words(tokenizer.expansion_tokens(focus)))

    def _answered_item(self, session: Session | None) -> tuple[Document, WorkItem] | None:
        """The item the user's last answer quoted, if it is still served."""
        if session is None or not session.answered:
            return None
        doc_id, locator = session.answered
        return self._searcher().find_item(locator, doc_id=doc_id)

    def _remember(self, key: SessionKey, text: str, plan: _Plan, answer: Answer) -> None:
        # the items the reply names, so that "回复 12" opens item 12 of the same document
        cited = {c.address.key for c in answer.citations}
        shown = tuple(h.address.key for h in answer.hits if answer.abstained or h.address.key in cited)
        top = answer.hits[0] if answer.kind == "answer" and answer.hits else None
        answered = (top.doc_id, top.item_locator) if top else None
        if plan.mode == "new":
            self.memory.update(key, topic=text.strip(), focus="", shown=shown, answered=answered)
        elif plan.mode == "refine":  # keeps the topic, so a second follow-up still has it
            self.memory.update(key, focus=plan.focus, shown=shown, answered=answered)
        else:
            session = self.memory.get(key)
            self.memory.update(key, shown=(session.shown if session else ()) + shown,
                               answered=answered or (session.answered if session else None))

    def _draft(self, limit: Limit, lang: str, **fields) -> compose.Draft:
        s = self.settings
        return compose.Draft(limit=limit, lang=lang, max_items=s.max_items, max_sentences=s.max_sentences,
                             min_confidence=s.min_confidence, contact_text=s.contact_text, **fields)

    # -- documents and items ------------------------------------------------------------------

    def open_ref(self, ref: str, part: int = 1, limit: Limit = UNLIMITED) -> Answer | None:
        """Part ``part`` of the item reference ``ref`` names (``HY12``); None when it names none."""
        found = self._searcher().find_ref(ref)
        if found is None:
            return None
        doc, item = found
        return compose.render("item", compose.Draft(limit=limit, document=doc, item=item, part=part))

    def document(self, question: Question, selector: str = "") -> Document | None:
        """The document ``selector`` names (1-based number or part of its title), else the current one."""
        docs = self._searcher().documents
        if selector.isdecimal() and selector.isascii():  # "❶".isdigit() is True but int("❶") fails
            n = int(selector)
            return docs[n - 1] if 1 <= n <= len(docs) else None
        if selector:
            return next((d for d in docs if selector in d.title or selector == d.doc_id), None)
        session = self.memory.get(_key(question))
        chosen = session.doc_id if session else None
        return next((d for d in docs if d.doc_id == chosen), docs[0] if docs else None)

    def find_item(self, question: Question, ref: str) -> tuple[Document, WorkItem] | None:
        """Item ``ref`` of the document the user is reading: one just cited, the chosen one, the newest."""
        searcher = self._searcher()
        session = self.memory.get(_key(question))
        cited = [doc_id for doc_id, locator in (session.shown if session else ()) if locator == ref]
        current = self.document(question)
        for doc_id in [*cited, current.doc_id if current else None]:
            found = searcher.find_item(ref, doc_id=doc_id)
            if found:
                return found
        return _by_number(current, ref) if current else None


@dataclass(frozen=True)
class _Plan:
    """What to search for one question.

    ``mode`` is "new" (a question of its own), "refine" (a follow-up on the topic), "more"
    (the same topic, other items) or "details" (the item answered last, in full); ``focus``
    holds a follow-up's own subject.
    """

    query: str
    focus: str = ""
    mode: str = "new"


def _plan(text: str, session: Session | None) -> _Plan | None:
    """How to search for ``text`` given the user's session; None when there is nothing to search."""
    if session and session.topic and is_followup(text):
        if content(text):  # "那高中呢": a new subject on the old topic, asked as the topic's question
            return _Plan(_join(session.topic, text), text.strip(), "refine")
        if session.answered and asks_for_details(text):  # "具体怎么做": the item answered, in full
            return _Plan(session.topic, mode="details")
        # "具体怎么做", "还有呢": no subject of their own, so the last one stands
        mode = "more" if _asks_for_more(text) else "refine"
        return _Plan(_join(session.topic, session.focus, "" if mode == "more" else text), session.focus, mode)
    return _Plan(text.strip()) if content(text) else None


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p.strip())


# -- commands -------------------------------------------------------------------------------------


@command(r"帮助|help|菜单|menu|使用说明|\?+")
def _help(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    return compose.render("help", compose.Draft(limit=limit, lang=language(question.text)))


@command(r"(?:(?P<hello>你好|您好|你们好|哈喽|嗨|在吗|在不在|有人吗|hi|hello|hey|早上好|下午好|晚上好)"
         r"|(?P<thanks>谢谢(?:你|您|啦|了)?|多谢|感谢|好的|好|嗯|ok|okay|thanks|thank you|thx|再见|拜拜|bye))"
         r"[\s!！~～。.,，?？]*")
def _smalltalk(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    """Greetings and thanks get one friendly line: they are not questions the documents failed to answer."""
    phrase = "greeting" if match.group("hello") else "thanks"
    return compose.render("smalltalk", compose.Draft(limit=limit, lang=language(question.text), intro=phrase))


@command(r"(?:(?P<good>有用|很有用|有帮助|挺有用|👍)|(?P<bad>没用|没有用|没帮助|没有帮助|不对|答非所问|👎))[\s!！~～。.,，]*")
def _rate(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    """有用 / 没用 right after an answer rates it, in any channel (the same record as POST /api/feedback)."""
    lang = language(question.text)
    answer_id = dialog.curation.last_answer(question.channel, question.user_id,
                                            within_s=dialog.settings.followup_ttl_s) if dialog.curation else None
    if answer_id is None:
        return compose.render("feedback", compose.Draft(limit=limit, lang=lang, intro="rated_nothing"))
    helpful = match.group("good") is not None
    dialog.curation.rate(answer_id, helpful)
    phrase = "rated_good" if helpful else "rated_bad"
    answer = compose.render("feedback", dialog._draft(limit, lang, intro=phrase))
    return replace(answer, extra={**answer.extra, "rated": answer_id, "helpful": helpful})


@command(r"(?:目录|toc|contents)(?:\s*(?P<doc>\S.*))?")
def _toc(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    doc = dialog.document(question, (match.group("doc") or "").strip())
    if doc is None:
        doc = dialog.document(question)
    elif match.group("doc"):
        dialog.memory.update(_key(question), doc_id=doc.doc_id)
    if doc is None:  # an index without documents cannot be published, but say something sane
        return compose.render("empty", compose.Draft(limit=limit))
    documents = dialog._searcher().documents
    return compose.render("toc", compose.Draft(limit=limit, documents=documents, document=doc))


@command(r"(?:第\s*)?(?P<num>\d{1,4}|(?<=第)[零〇一二两三四五六七八九十百]{1,6})\s*[条项]?"
         r"(?:\s*[-—~～]\s*(?P<part>\d{1,3}))?")
def _item(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    ref = str(parse_number(match.group("num")))
    part = int(match.group("part") or 1)
    found = dialog.find_item(question, ref)
    if found is None:
        return compose.render("not_found", compose.Draft(limit=limit, lang=language(question.text), ref=ref))
    doc, item = found
    return compose.render("item", compose.Draft(limit=limit, document=doc, item=item, part=part))


@command(r"(?P<ref>[A-Za-z]{1,3}\s*\d{1,4})(?:\s*[-—~～]\s*(?P<part>\d{1,3}))?")
def _reference(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    """A reference the bot showed (``YW11``): that item of that document, for anyone, in any channel."""
    answer = dialog.open_ref(match.group("ref"), int(match.group("part") or 1), limit)
    # "k12", "hi 2": not a reference after all, so it is a question
    return answer if answer is not None else dialog._ask(question, limit)


# -- text helpers ---------------------------------------------------------------------------------

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
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_ASKING = ("具体", "详细", "全文", "原文", "展开", "说说", "怎么", "如何", "怎样", "哪些", "什么", "其他", "其它",
           "别的", "how", "what", "more")
_DETAILS = ("具体", "详细", "详情", "细节", "全文", "原文", "展开", "怎么做", "怎么办", "如何做", "怎样做", "怎么弄",
            "怎么操作", "如何操作", "怎么落实", "如何落实", "detail", "how", "full")
FOLLOWUP_MAX_CHARS = 8
FOLLOWUP_MAX_WORDS = 5
FOLLOWUP_POOL = 8  # items compared between a follow-up's own search and the one with its topic


def normalize(text: str) -> str:
    """Fold full-width forms (``１２`` → ``12``, ``？`` → ``?``), trim spaces and closing punctuation."""
    return unicodedata.normalize("NFKC", text).strip().rstrip("。.!！").strip()


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
    latin_words = len(_NOT_WORD.sub(" ", text).split()) if not _CJK.search(text) else 0
    short = len(compact) <= FOLLOWUP_MAX_CHARS if _CJK.search(compact) else latin_words <= FOLLOWUP_MAX_WORDS
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


def _quoting(hit: Hit, terms: tuple[str, ...], norm: Callable[[str], str]) -> Hit:
    """``hit`` quoting a sentence that names the new subject, when its chosen ones do not."""
    if any(_names(norm(s), terms) for s in hit.sentences):
        return hit
    naming = next((s for s in compose.sentences(hit.text) if _names(norm(s), terms)), None)
    if naming is None:
        return hit
    return replace(hit, sentences=tuple(sorted({*hit.sentences[:1], naming}, key=hit.text.find)))


def _names(text: str, terms: tuple[str, ...]) -> bool:
    return any(term in text for term in terms)


def _asks_for_more(text: str) -> bool:
    compact = _NOT_WORD.sub("", text.lower())
    return compact.startswith(("还有", "另外", "and", "more", "else")) or compact in ("其他", "其它", "别的")


def language(text: str) -> str:
    """``"en"`` for a mostly-latin message, else ``"zh"`` (the frame language of the reply)."""
    return "en" if len(_LATIN.findall(text)) > 2 * len(_CJK.findall(text)) else "zh"


def parse_number(numeral: str) -> int:
    """``"12"``, ``"十二"``, ``"一百零五"`` → int (the same reader as the parser's)."""
    return cn_int(numeral)


def _key(question: Question) -> SessionKey:
    return (question.channel, question.user_id)


def _drop_shown(result: SearchResult, shown: tuple[tuple[str, str], ...]) -> SearchResult:
    seen = set(shown)
    hits = tuple(h for h in result.hits if h.address.key not in seen)
    confidence = hits[0].confidence if hits else 0.0
    return replace(result, hits=hits, confidence=confidence, abstained=result.abstained or not hits)


def _by_number(doc: Document, ref: str) -> tuple[Document, WorkItem] | None:
    """Item numbered ``ref`` when locators are paths ("三/（二）/1") and the number is unique."""
    matches = [item for item in doc.items if str(item.number) == ref]
    return (doc, matches[0]) if len(matches) == 1 else None
