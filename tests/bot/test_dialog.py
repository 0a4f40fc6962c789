"""Dialog: what a user notices, against the real index built from corpus/."""

from __future__ import annotations

import re
import threading

import pytest

from bot.compose import item_body
from bot.dialog import Dialog, DialogSettings, is_followup, parse_number
from bot.domain import TELEGRAM_LIMIT, WECHAT_LIMIT, Limit, Question
from bot.sessions import SessionMemory
from tests.conftest import CORPUS, LAW, SEED

TITLE = "衡阳市教育局2020年工作要点"
CORPUS_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.*")))

VARIED_QUESTIONS = [
    "今年幼儿园有啥目标？",
    "今年要新建几所中小学？",
    "在乡下教书有没有额外补贴",
    "吃空饷的问题会清理吗",
    "小区配套园要转多少所？无证幼儿园怎么处理？",
    "班级人数太多 da ban e 能解决吗",
    "心育护花行动是什么",
    "校园安全今年重点抓哪些工作？",
    "师德考核怎么搞？教师培训今年有啥新计划？",
    "What will the bureau do about off-campus tutoring centers?",
    "Any plans to use 5G and AI in teaching?",
    "我想问下teacher salary会不会按时发",
    "贫困学生资住政策有哪些",
    "校服一套多少钱",
    "明天天气怎么样",
    "学宪法讲宪法活动今年是第几届",
]


class Chat:
    """One user talking to a dialog on one channel."""

    def __init__(self, dialog: Dialog, user: str = "u1", channel: str = "wechat",
                 limit: Limit = WECHAT_LIMIT) -> None:
        self.dialog, self.user, self.channel, self.limit = dialog, user, channel, limit

    def say(self, text: str):
        return self.dialog.respond(Question(self.channel, self.user, text), self.limit)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


CONTACT = "如需进一步咨询，请拨打 12345 政务服务热线。"


@pytest.fixture
def dialog(searcher, clock) -> Dialog:
    settings = DialogSettings(contact_text=CONTACT)
    return Dialog(lambda: searcher, settings=settings,
                  memory=SessionMemory(ttl_s=settings.followup_ttl_s, clock=clock))


@pytest.fixture
def chat(dialog) -> Chat:
    return Chat(dialog)


@pytest.fixture(scope="module")
def seed_doc(searcher):
    return next(d for d in searcher.documents if d.title == TITLE)


def quoted_lines(text: str) -> list[str]:
    """The quoted passages of ``text`` (sentences apart in an item are joined by an ellipsis)."""
    return [part for line in text.split("\n") if line.startswith("“") and line.endswith("”")
            for part in line[1:-1].split("……")]


# -- answers ------------------------------------------------------------------------------------


def test_kindergarten_goals_cite_the_item_with_verbatim_sentences(chat):
    answer = chat.say("今年幼儿园有啥目标？")
    assert answer.kind == "answer" and not answer.abstained
    assert answer.citations[0].item_number in (12, 3)
    quote, cite = answer.text.split("\n")[:2]
    assert quote.startswith("“") and cite.startswith(f"——《{TITLE}》")
    assert cite.endswith(f"（回复 HY{answer.citations[0].item_number} 看全文）")
    quotes = quoted_lines(answer.text)
    assert 1 <= len(quotes) <= 3
    assert all(q in CORPUS_TEXT for q in quotes)


@pytest.mark.parametrize("question", VARIED_QUESTIONS)
def test_every_quoted_line_occurs_in_the_documents(chat, question):
    answer = chat.say(question)
    assert len(quoted_lines(answer.text)) <= 3
    for line in quoted_lines(answer.text):
        assert line in CORPUS_TEXT, line
    for citation in answer.citations:
        assert f"《{citation.doc_title}》" in answer.text


@pytest.mark.parametrize("limit", [WECHAT_LIMIT, TELEGRAM_LIMIT])
@pytest.mark.parametrize("question", [*VARIED_QUESTIONS, "目录", "帮助", "27", "17"])
def test_replies_fit_the_channel(dialog, question, limit):
    text = Chat(dialog, limit=limit).say(question).text
    assert len(text.encode("utf-8")) <= (limit.max_bytes or 10**9)
    assert len(text) <= (limit.max_chars or 10**9)


def test_english_question_is_answered(chat):
    answer = chat.say("Any plans to use 5G and AI in teaching?")
    assert answer.kind == "answer"
    assert 5 in [c.item_number for c in answer.citations]
    assert "(reply HY5 for the full text)" in answer.text


def test_abstains_with_suggestions_and_contact(chat):
    answer = chat.say("明天天气怎么样")
    assert answer.abstained and answer.kind == "abstain"
    assert answer.text.startswith("抱歉，现有文件中没有找到与此直接相关的内容。")
    suggestions = re.findall(r"^(\d+)\. .+（回复 HY\1 查看）$", answer.text, re.M)
    assert 2 <= len(suggestions) <= 3
    assert CONTACT in answer.text
    assert not quoted_lines(answer.text)


def test_a_question_for_a_fact_the_plan_does_not_give_is_told_which(chat):
    answer = chat.say("校服一套多少钱")
    assert answer.abstained and answer.text.startswith("抱歉，现有文件中没有给出您问的金额。\n")
    assert not quoted_lines(answer.text)


def test_no_contact_line_unless_one_is_configured(searcher):
    # the bot serves any bureau's library: it never names one on its own
    answer = Dialog(lambda: searcher).respond(Question("web", "u", "明天天气怎么样"))
    assert answer.abstained and "教育局" not in answer.text


@pytest.mark.parametrize("text", ["", "   ", "。。，", "！！！", "的了吗", "嗯嗯"])
def test_nothing_to_search_asks_to_rephrase(chat, text):
    answer = chat.say(text)
    assert answer.kind in ("empty", "answer", "abstain")
    if text != "嗯嗯":  # a real word the search may or may not place: only the fillers are sure
        assert answer.kind == "empty"
        assert answer.text.startswith("请换个说法")


# -- commands -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["12", "１２", "第12条", "第十二条", "第12项", "第 12 条", "12。"])
def test_item_number_gives_the_full_text(chat, seed_doc, text):
    answer = chat.say(text)
    assert answer.kind == "item"
    header, body = answer.text.split("\n", 1)
    assert header == f"《{TITLE}》五、深化教学改革，促进基础教育高质量发展 › 12. 办好普惠优质学前教育"
    item = next(i for i in seed_doc.items if i.number == 12)
    assert body == item_body(seed_doc, item)
    assert body.startswith("12.办好普惠优质学前教育。") and body in seed_doc.text
    assert "剩余85所小区配套园" in body


@pytest.mark.parametrize("text", ["99", "第九十九条", "0"])
def test_unknown_item(chat, text):
    answer = chat.say(text)
    assert answer.kind == "not_found"
    assert answer.text == f"没有第{parse_number(text.strip('第条'))}项，回复 目录 查看全部。"


def test_toc_lists_all_27_items(chat):
    answer = chat.say("目录")
    assert answer.kind == "toc" and not answer.truncated
    assert [int(n) for n in re.findall(r"^\s+(\d+)\. ", answer.text, re.M)] == list(range(1, 28))
    assert "一、加强党的政治建设，确保正确办学方向" in answer.text


@pytest.mark.parametrize("text", ["帮助", "help", "HELP", "?", "？"])
def test_help(chat, text):
    answer = chat.say(text)
    assert answer.kind == "help"
    assert "目录" in answer.text


def test_welcome_is_welcome_and_help(dialog):
    text = dialog.welcome()
    assert text.startswith(DialogSettings().welcome_text) and "目录" in text


def test_long_item_is_split_into_parts_that_continue(dialog, seed_doc):
    longest = max(seed_doc.items, key=lambda i: len(item_body(seed_doc, i).encode("utf-8")))
    body, ref = item_body(seed_doc, longest), longest.locator
    limit = Limit(max_bytes=len(body.encode("utf-8")) // 2)
    user = Chat(dialog, limit=limit)
    first = user.say(ref)
    assert first.truncated and len(first.text.encode("utf-8")) <= limit.max_bytes
    assert first.text.endswith(f"（内容较长，回复 {ref}-2 查看下一部分）")
    parts = [first] + [user.say(f"{ref}-{n}") for n in range(2, first.extra["parts"] + 1)]
    assert all(len(p.text.encode("utf-8")) <= limit.max_bytes for p in parts)
    assert "".join(p.text.split("\n")[1] for p in parts) == body.replace("\n", "")
    assert user.say(f"{ref}-{len(parts) + 1}").kind == "not_found"


# -- follow-ups ---------------------------------------------------------------------------------


def test_followup_uses_the_same_users_topic_only(dialog):
    alice, bob = Chat(dialog, "alice"), Chat(dialog, "bob")
    alice.say("今年幼儿园有啥目标？")
    answer = alice.say("那高中呢")
    assert answer.extra["followup"] and "幼儿园" in answer.extra["query"]
    assert 14 in [c.item_number for c in answer.citations]
    other = bob.say("那高中呢")
    assert not other.extra["followup"] and other.extra["query"] == "那高中呢"
    # the same user id on another channel is another person
    assert not Chat(dialog, "alice", channel="telegram").say("那高中呢").extra["followup"]


def test_followup_keeps_the_topic_for_its_new_subject(chat):
    first = chat.say("学生资助有哪些政策")
    assert "资助" in first.hits[0].text
    answer = chat.say("那幼儿园呢")
    assert answer.kind == "answer" and answer.extra["query"].startswith("学生资助有哪些政策")
    top = answer.hits[0].text
    assert "资助" in top and ("幼儿园" in top or "学前教育" in top)
    # the quote shows the sentence that names the new subject
    assert any(word in q for q in quoted_lines(answer.text) for word in ("幼儿园", "学前教育"))


def test_followup_on_a_subject_the_documents_do_not_cover_declines(chat):
    first = chat.say("乡村教师有没有补贴")
    assert first.kind == "answer"
    answer = chat.say("那城里的呢")
    assert answer.extra["followup"] and answer.abstained
    assert not quoted_lines(answer.text)


@pytest.mark.parametrize("text", ["具体怎么做", "详细说说", "怎么落实？", "全文"])
def test_details_followup_opens_the_answered_item_in_full(chat, seed_doc, text):
    first = chat.say("乡村教师有没有补贴")
    cited = first.citations[0]
    answer = chat.say(text)
    assert answer.kind == "item" and answer.extra["followup"]
    assert answer.citations[0].item_locator == cited.item_locator
    item = next(i for i in seed_doc.items if i.locator == cited.item_locator)
    assert item_body(seed_doc, item) in answer.text


def test_details_after_a_decline_do_not_open_a_suggestion(chat):
    chat.say("明天天气怎么样")
    assert chat.say("具体怎么做").kind != "item"


def test_followup_expires(dialog, clock):
    user = Chat(dialog)
    user.say("今年幼儿园有啥目标？")
    clock.now += DialogSettings().followup_ttl_s + 1
    assert not user.say("那高中呢").extra["followup"]


def test_more_shows_other_items(chat):
    first = chat.say("今年幼儿园有啥目标？")
    more = chat.say("还有呢")
    assert more.extra["followup"]
    shown = {c.item_number for c in first.citations}
    assert not shown & {c.item_number for c in more.citations}


def test_more_until_nothing_is_left(chat):
    chat.say("那高中呢")
    replies = [chat.say("还有呢") for _ in range(6)]
    assert replies[-1].abstained
    assert replies[-1].text.startswith("关于这个问题，文件中没有更多直接相关的内容了。")


def test_no_topic_no_followup(chat):
    assert chat.say("还有呢").kind == "empty"


def test_fillers_are_no_followup(chat):
    chat.say("今年幼儿园有啥目标？")
    assert chat.say("的了吗").kind == "empty"


@pytest.mark.parametrize("text, expected", [
    ("那高中呢？", True), ("那小学呢", True), ("还有呢", True), ("具体怎么做", True), ("详细说说", True),
    ("what about high school?", True), ("今年幼儿园有啥目标？", False),
    ("特殊教育提升计划现在到第几期了", False), ("How many new schools will Hengyang build in 2020?", False),
])
def test_is_followup(text, expected):
    assert is_followup(text) is expected


# -- session memory -----------------------------------------------------------------------------


def test_memory_is_bounded_lru(clock):
    memory = SessionMemory(ttl_s=60, max_users=3, clock=clock)
    for user in "abcd":
        memory.update(("wechat", user), topic=user)
    assert len(memory) == 3 and memory.get(("wechat", "a")) is None
    memory.get(("wechat", "b"))  # b is now the most recent: c goes next
    memory.update(("wechat", "e"), topic="e")
    assert memory.get(("wechat", "c")) is None and memory.get(("wechat", "b")).topic == "b"


def test_memory_is_thread_safe(clock):
    memory = SessionMemory(ttl_s=60, max_users=50, clock=clock)

    def talk(n: int) -> None:
        for i in range(500):
            memory.update(("web", f"user{(n * 500 + i) % 80}"), topic=str(i))
            memory.get(("web", f"user{i % 80}"))

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memory) == 50


def test_memory_rejects_nonsense_settings():
    with pytest.raises(ValueError, match="positive"):
        SessionMemory(ttl_s=0)


@pytest.mark.parametrize("field, value, message", [
    ("max_items", 0, "DialogSettings.max_items must be positive"),
    ("followup_ttl_s", -1, "DialogSettings.followup_ttl_s must be positive"),
    ("min_confidence", 1.5, "DialogSettings.min_confidence must be within 0..1"),
])
def test_settings_are_checked(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DialogSettings(**{field: value})


# -- several documents --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_docs(tmp_path_factory, embedding_cache):
    """A real index of the seed plan (2020) and the compulsory education law (2018; chapters 1–2,
    articles 1–14)."""
    from index.build import build_index
    from index.search import open_searcher

    data = tmp_path_factory.mktemp("two-docs")
    build_index([SEED, LAW], data / "data", cache_dir=embedding_cache)
    searcher = open_searcher(data / "data")
    return Dialog(lambda: searcher)


def test_toc_lists_documents_then_the_newest(two_docs):
    text = Chat(two_docs, "toc").say("目录").text
    docs, seed = text.split("\n\n")[:2]
    assert docs.splitlines()[1:] == [f"1. 《{TITLE}》（当前）", "2. 《中华人民共和国义务教育法》"]
    assert seed == f"《{TITLE}》"
    assert "  27. 抓好行风政风建设" in text


def test_toc_selects_a_document_for_item_numbers(two_docs):
    user = Chat(two_docs, "reader")
    toc = user.say("目录 2").text
    assert "第二章" in toc and "\n  第十二条 " in toc  # articles listed as the law numbers them
    assert user.say("12").text.split("\n")[1].startswith("第十二条")
    assert Chat(two_docs, "other").say("12").text.split("\n")[1].startswith("12.办好普惠优质学前教育")


def test_reply_number_opens_the_cited_document(two_docs):
    user = Chat(two_docs, "asker")
    answer = user.say("适龄儿童少年上学要考试吗？")
    law = [c for c in answer.citations if c.doc_title == "中华人民共和国义务教育法"]
    assert law, answer.text
    ref = law[0].item_locator
    assert user.say(ref).text.split("\n")[0] == law[0].render()
