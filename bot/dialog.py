"""The conversation: turn one user message into one :class:`~bot.domain.Answer`.

A message is first matched against the command registry (``帮助``, ``目录``, ``12``,
``第十二条``, ``12-2``); anything else is a question. A short follow-up ("那高中呢？",
"还有呢", "具体怎么做") is read (by :mod:`bot.followups`) against the same user's previous
question, kept in :class:`~bot.sessions.SessionMemory` for a few minutes: its new subject is
searched within that topic, or the topic is searched again for more items. The search result
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
from bot.followups import (  # noqa: F401  (the text readers stay importable from here)
    CJK,
    FOLLOWUP_MAX_CHARS,
    FOLLOWUP_MAX_WORDS,
    FOLLOWUP_POOL,
    GREETINGS,
    Plan,
    asks_for_details,
    content,
    drop_shown,
    is_followup,
    mentions,
    plan_for,
    quoting,
    whole_words,
)
from bot.phrases import PHRASES
from bot.sessions import Session, SessionKey, SessionMemory
from index.domain import Document, WorkItem
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
        plan = plan_for(question.text, session)
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

    def _search(self, plan: Plan, session: Session | None, scope: str | None = None) -> SearchResult:
        """Search for ``plan``; "还有呢" leaves out the items already shown."""
        shown = session.shown if plan.mode == "more" and session else ()
        k = self.settings.search_k + len(shown)
        search = self._refine if plan.focus else self._plain
        result = search(plan.query, plan.focus, k, scope)
        if shown:
            result = drop_shown(result, shown)
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
        hits = [quoting(h, terms, norm) for h in both.hits if mentions(norm(h.text), terms)]
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

    def _remember(self, key: SessionKey, text: str, plan: Plan, answer: Answer) -> None:
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

    def named_document(self, text: str) -> Document | None:
        """The one document ``text`` names (义务教育法, 衡阳), or None."""
        return self._searcher().named_document(text)

    def item_of(self, doc: Document, ref: str) -> tuple[Document, WorkItem] | None:
        """Item ``ref`` (its locator, or its number when that is unique) of ``doc``."""
        return self._searcher().find_item(ref, doc_id=doc.doc_id) or _by_number(doc, ref)

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


# -- commands -------------------------------------------------------------------------------------


@command(r"帮助|help|菜单|menu|使用说明|\?+")
def _help(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    return compose.render("help", compose.Draft(limit=limit, lang=language(question.text)))


@command(rf"(?:(?P<hello>{GREETINGS})"
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


# an item's number as users write it: 12, 十二, 一百零五
_CN_NUMBER = "[零〇一二两三四五六七八九十百]{1,6}"


@command(rf"(?:第\s*)?(?P<num>\d{{1,4}}|(?<=第){_CN_NUMBER})\s*[条條项項]?"
         r"(?:\s*[-—~～]\s*(?P<part>\d{1,3}))?")
def _item(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    ref = str(parse_number(match.group("num")))
    part = int(match.group("part") or 1)
    found = dialog.find_item(question, ref)
    if found is None:
        return compose.render("not_found", compose.Draft(limit=limit, lang=language(question.text), ref=ref,
                                                         document=dialog.document(question)))
    doc, item = found
    return compose.render("item", compose.Draft(limit=limit, document=doc, item=item, part=part))


@command(rf"(?P<doc>[^第]{{2,40}}?)\s*第\s*(?P<num>\d{{1,4}}|{_CN_NUMBER})\s*[条條项項]"
         r"(?:的?(?:内容|原文|全文)|(?:是|说|讲|写|规定)了?(?:的是)?(?:什么|啥)|怎么(?:说|规定)的?)?[呢啊吗]?\s*[?？]*")
def _named_item(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    """An item of a document the message names (义务教育法第十一条, 衡阳工作要点第3条是什么): that item,
    as a reference opens it. A name that is no document's (我们学校第3条) makes it a question."""
    doc = dialog.named_document(match.group("doc"))
    if doc is None:
        return dialog._ask(question, limit)
    ref = str(parse_number(match.group("num")))
    found = dialog.item_of(doc, ref)
    if found is None:
        return compose.render("not_found", compose.Draft(limit=limit, lang=language(question.text), ref=ref,
                                                         document=doc))
    dialog.memory.update(_key(question), doc_id=doc.doc_id)  # its next bare number reads this document
    return compose.render("item", compose.Draft(limit=limit, document=found[0], item=found[1]))


@command(r"(?P<ref>[A-Za-z]{1,3}\s*\d{1,4})(?:\s*[-—~～]\s*(?P<part>\d{1,3}))?")
def _reference(dialog: Dialog, question: Question, match: re.Match, limit: Limit) -> Answer:
    """A reference the bot showed (``YW11``): that item of that document, for anyone, in any channel."""
    answer = dialog.open_ref(match.group("ref"), int(match.group("part") or 1), limit)
    # "k12", "hi 2": not a reference after all, so it is a question
    return answer if answer is not None else dialog._ask(question, limit)


# -- text helpers ---------------------------------------------------------------------------------

_LATIN = re.compile(r"[A-Za-z]")


def normalize(text: str) -> str:
    """Fold full-width forms (``１２`` → ``12``, ``？`` → ``?``), trim spaces and closing punctuation."""
    return unicodedata.normalize("NFKC", text).strip().rstrip("。.!！").strip()


def language(text: str) -> str:
    """``"en"`` for a mostly-latin message, else ``"zh"`` (the frame language of the reply)."""
    return "en" if len(_LATIN.findall(text)) > 2 * len(CJK.findall(text)) else "zh"


def parse_number(numeral: str) -> int:
    """``"12"``, ``"十二"``, ``"一百零五"`` → int (the same reader as the parser's)."""
    return cn_int(numeral)


def _key(question: Question) -> SessionKey:
    return (question.channel, question.user_id)


def _by_number(doc: Document, ref: str) -> tuple[Document, WorkItem] | None:
    """Item numbered ``ref`` when locators are paths ("三/（二）/1") and the number is unique."""
    matches = [item for item in doc.items if str(item.number) == ref]
    return (doc, matches[0]) if len(matches) == 1 else None
