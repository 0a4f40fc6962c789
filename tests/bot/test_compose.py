"""Compose: reply templates, channel limits and the JSON shape.

The pure functions are tested on hits built by hand from the seed document's own
sentences; the item and table-of-contents templates on the real parsed document.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from bot import compose
from bot.compose import Draft, answer_json, cite_hit, fit, fits, item_body, item_parts, pick_hits, render
from bot.domain import TELEGRAM_LIMIT, UNLIMITED, WECHAT_LIMIT, Citation, Limit
from bot.phrases import ZH
from index.domain import Hit
from index.search import SearchResult
from tests.conftest import CORPUS, FIXTURES, LAW, SEED

SEED_TEXT = SEED.read_text(encoding="utf-8")
TITLE = "衡阳市教育局2020年工作要点"
ALL_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.*")))


def _seed_items() -> dict[int, tuple[str, str, list[str]]]:
    """``number → (section heading, title, sentences)``, read straight off the seed text."""
    items, section = {}, ""
    for line in SEED_TEXT.splitlines():
        if re.match(r"^[一二三四五六七八]、", line):
            section = line.strip()
        elif m := re.match(r"^(\d+)\.(.+?)。(.*)$", line):
            items[int(m[1])] = (section, m[2], re.findall(r"[^。]+。", m[3]))
    return items


ITEMS = _seed_items()


def seed_hit(number: int, n_sentences: int = 2, confidence: float = 0.9) -> Hit:
    section, title, sentences = ITEMS[number]
    return Hit(doc_id="hengyang-2020", doc_title=TITLE, year=2020, section=section, item_number=number,
               item_title=title, item_locator=str(number), sentences=tuple(sentences[:n_sentences]),
               score=confidence, confidence=confidence, text="".join(sentences), ref=f"HY{number}")


def size(text: str) -> int:
    return len(text.encode("utf-8"))


# -- fit --------------------------------------------------------------------------------------


def test_fit_keeps_everything_that_fits():
    blocks = ["办好普惠优质学前教育。", "抓好各类示范性幼儿园创建工作。"]
    assert fit(blocks, WECHAT_LIMIT, "回复 12 查看全文") == ("\n\n".join(blocks), False)


def test_fit_exactly_at_the_byte_boundary():
    blocks = ["抓好各类示范性幼儿园创建工作。", "加强特殊教育基础能力建设。"]
    whole = "\n\n".join(blocks)
    assert fit(blocks, Limit(max_bytes=size(whole)), "回复 12 查看全文") == (whole, False)
    text, truncated = fit(blocks, Limit(max_bytes=size(whole) - 1), "…")
    assert truncated
    assert text == f"{blocks[0]}\n\n…"


def test_fit_exactly_at_the_char_boundary():
    blocks = ["抓好各类示范性幼儿园创建工作。", "加强特殊教育基础能力建设。"]
    whole = "\n\n".join(blocks)
    assert fit(blocks, Limit(max_chars=len(whole)), "更多") == (whole, False)
    assert fit(blocks, Limit(max_chars=len(whole) - 1), "更多") == (f"{blocks[0]}\n\n更多", True)


def test_fit_cuts_a_long_first_block_after_a_whole_sentence():
    item_text = next(line for line in SEED_TEXT.splitlines() if line.startswith("27."))
    limit = Limit(max_bytes=400)
    text, truncated = fit([item_text], limit, "回复 27 查看全文")
    assert truncated
    assert size(text) <= 400
    head, hint = text.split("\n\n")
    assert hint == "回复 27 查看全文"
    assert item_text.startswith(head) and head.endswith("。")


@pytest.mark.parametrize("max_bytes", [*range(0, 80), 2047, 2048, 2049])
def test_fit_never_exceeds_bytes_nor_splits_a_character(max_bytes):
    text_without_stops = "衡阳" * 2000  # no sentence end: the cut must fall between characters
    text, truncated = fit([text_without_stops], Limit(max_bytes=max_bytes), "（更多）")
    assert truncated
    assert size(text) <= max_bytes
    assert text.encode("utf-8").decode("utf-8") == text
    if max_bytes >= size("衡\n\n（更多）"):
        assert text.endswith("\n\n（更多）") and text_without_stops.startswith(text.split("\n\n")[0])


@pytest.mark.parametrize("limit", [WECHAT_LIMIT, TELEGRAM_LIMIT, Limit(max_bytes=300), Limit(max_chars=100)])
def test_fit_over_the_whole_document(limit):
    blocks = [line for line in SEED_TEXT.split("\n") if line]
    text, truncated = fit(blocks, limit, "回复 目录 查看全部", sep="\n")
    assert truncated and fits(text, limit)
    body, hint = text.rsplit("\n", 1)
    assert hint == "回复 目录 查看全部"
    assert "\n".join(blocks).startswith(body)


# -- item parts -------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [WECHAT_LIMIT, Limit(max_bytes=600), Limit(max_bytes=301),
                                   Limit(max_chars=150)])
def test_item_parts_cover_the_text_and_each_fits(limit):
    body = "".join(line for line in SEED_TEXT.splitlines() if re.match(r"^\d+\.", line))  # ~15 kB
    header = f"《{TITLE}》八、推进依法治教，保障教育改革发展 › 27. 抓好行风政风建设"
    parts = item_parts(header, body, "27", limit)
    assert len(parts) > 1
    assert "".join(parts) == body
    for n, part in enumerate(parts, start=1):
        framed = compose._item_frame(header, part, "27", n, len(parts), ZH)
        assert fits(framed, limit), (n, size(framed))


def test_item_parts_single_when_it_fits():
    assert item_parts("header", "办好普惠优质学前教育。", "12", WECHAT_LIMIT) == ["办好普惠优质学前教育。"]


# -- answer and abstain ------------------------------------------------------------------------


def _result(*hits: Hit, abstained: bool = False) -> SearchResult:
    return SearchResult("问题", tuple(hits), hits[0].confidence if hits else 0.0, abstained)


def test_pick_hits_points_only_to_items_nearly_as_good():
    hits = [seed_hit(12, confidence=0.9), seed_hit(3, confidence=0.85), seed_hit(4, confidence=0.6)]
    best, others = pick_hits(hits, max_items=3, min_confidence=0.5)
    assert best.item_number == 12 and [h.item_number for h in others] == [3]


def test_pick_hits_skips_unsure_items_after_the_first():
    hits = [seed_hit(5, 1, confidence=0.4), seed_hit(13, 1, confidence=0.36), seed_hit(3, 1, confidence=0.38)]
    best, others = pick_hits(hits, max_items=3, min_confidence=0.37)
    assert best.item_number == 5 and [h.item_number for h in others] == [3]


def test_answer_quotes_the_best_item_over_one_citation_line():
    answer = render("answer", Draft(result=_result(seed_hit(12), seed_hit(3, 1)), limit=WECHAT_LIMIT))
    assert answer.kind == "answer" and not answer.abstained and not answer.truncated
    quote, cite, pointer = answer.text.split("\n")
    assert quote.startswith("“") and quote.endswith("”")
    assert all(part in SEED_TEXT for part in quote[1:-1].split("……"))
    assert cite == f"——《{TITLE}》12. 办好普惠优质学前教育（回复 HY12 看全文）"
    assert pointer == f"另见《{TITLE}》3. {ITEMS[3][1]}（回复 HY3）"
    assert ITEMS[3][2][0] not in answer.text  # a second item is pointed to, not quoted
    assert [c.item_number for c in answer.citations] == [12]


def test_answer_never_quotes_only_the_title():
    section, title, sentences = ITEMS[12]
    hit = replace(seed_hit(12), sentences=(f"{title}。",), text=f"{title}。" + "".join(sentences))
    answer = render("answer", Draft(result=_result(hit), limit=WECHAT_LIMIT))
    quote = answer.text.split("\n")[0]
    assert quote.startswith(f"“{sentences[0]}")


def test_answer_leaves_out_weak_items():
    answer = render("answer", Draft(result=_result(seed_hit(12), seed_hit(3, confidence=0.5)),
                                    limit=WECHAT_LIMIT))
    assert "HY3" not in answer.text and len(answer.text.split("\n")) == 2


def test_a_law_article_is_cited_by_its_label_beside_its_quote():
    hit = replace(seed_hit(12), doc_title="中华人民共和国义务教育法", item_label="第十一条",
                  item_title="凡年满六周岁的儿童，其父母或者其他法定监护人应当送其入学接受并完成义务教育")
    cite = render("answer", Draft(result=_result(hit))).text.split("\n")[1]
    assert cite == "——《中华人民共和国义务教育法》第十一条（回复 HY12 看全文）"


def test_a_hit_without_a_library_reference_falls_back_to_its_number():
    hit = replace(seed_hit(12), ref="")
    answer = render("answer", Draft(result=_result(hit), limit=WECHAT_LIMIT))
    assert answer.text.split("\n")[1].endswith("（回复 12 看全文）")


def test_answer_keeps_numbers_as_the_document_writes_them():
    answer = render("answer", Draft(result=_result(seed_hit(3)), limit=WECHAT_LIMIT))
    assert "新改扩建公办中小学30所，新增义务教育学位2.5万个以上" in answer.text


def test_answer_fits_a_tight_limit_with_a_hint():
    limit = Limit(max_bytes=300)
    answer = render("answer", Draft(result=_result(seed_hit(17), seed_hit(3), seed_hit(12)), limit=limit))
    assert answer.truncated and size(answer.text) <= 300
    assert answer.text.endswith("（内容较长，回复 HY17 查看全文）")


def test_abstain_lists_suggestions_and_contact():
    draft = Draft(result=_result(seed_hit(25, confidence=0.2), seed_hit(7, confidence=0.1), abstained=True),
                  contact_text="如需进一步咨询，请联系衡阳市教育局。")
    answer = render("abstain", draft)
    assert answer.abstained and answer.kind == "abstain"
    assert answer.text.startswith("抱歉，现有文件中没有找到与此直接相关的内容。")
    assert "25. 加强安全稳定工作（回复 HY25 查看）" in answer.text
    assert "7. 强化体卫艺工作（回复 HY7 查看）" in answer.text
    assert answer.text.endswith("如需进一步咨询，请联系衡阳市教育局。")
    assert "“" not in answer.text  # nothing is quoted as if it answered


def test_a_suggested_article_shows_its_label_not_a_bare_digit():
    article = replace(seed_hit(12, confidence=0.2), doc_title="某市学前教育条例", item_label="第五条",
                      item_title="本条例自2020年3月1日起施行", ref="MS5")
    answer = render("abstain", Draft(result=_result(article, abstained=True)))
    assert "第五条 本条例自2020年3月1日起施行（回复 MS5 查看）" in answer.text and "\n12. " not in answer.text


def test_a_decline_for_an_unstated_fact_says_which_fact():
    # 幼儿园一个月收多少钱: the fee rules are in the documents, an amount is not
    result = replace(_result(seed_hit(12, confidence=0.1), abstained=True), unstated=("price",))
    assert render("abstain", Draft(result=result)).text.startswith("抱歉，现有文件中没有给出您问的金额。\n")
    both = replace(result, unstated=("date", "website"))
    assert render("abstain", Draft(result=both)).text.startswith("抱歉，现有文件中没有给出您问的日期、网址或平台。")
    english = render("abstain", Draft(result=result, lang="en")).text
    assert english.startswith("Sorry, the published documents do not give the amount of money you ask about.")


def test_abstain_opening_can_be_replaced():
    answer = render("abstain", Draft(result=_result(seed_hit(25), abstained=True), intro="没有更多了。"))
    assert answer.text.startswith("没有更多了。\n")


def test_english_frame():
    answer = render("answer", Draft(result=_result(seed_hit(5, 3)), lang="en"))
    assert "(reply HY5 for the full text)" in answer.text
    assert answer.text.startswith(f"“{ITEMS[5][2][0]}")


def test_unknown_kind_falls_back_to_unsupported():
    assert render("voice", Draft()).kind == "unsupported"


def test_answer_json_shape():
    answer = render("answer", Draft(result=_result(seed_hit(12), seed_hit(3, 1))))
    data = answer_json(answer)
    assert set(data) == {"answer", "kind", "abstained", "confidence", "hits"}
    assert data["abstained"] is False and data["confidence"] == 0.9
    assert data["hits"][0] == {
        "kind": "item", "document": TITLE, "doc_id": "hengyang-2020", "item": 12, "item_title": "办好普惠优质学前教育",
        "section": "五、深化教学改革，促进基础教育高质量发展", "ref": "HY12", "score": 0.9,
        "sentences": list(ITEMS[12][2][:2]), "text": "".join(ITEMS[12][2]),
    }
    assert data["hits"][1]["sentences"] == [ITEMS[3][2][0]]


def test_welcome_has_help():
    text = render("welcome", Draft(intro="您好！")).text
    assert text.startswith("您好！") and "目录" in text


@pytest.mark.parametrize("kind", ["help", "welcome", "empty", "unsupported"])
def test_fixed_texts_fit_wechat(kind):
    assert fits(render(kind, Draft(intro="您好！", limit=UNLIMITED)).text, WECHAT_LIMIT)


# -- items and table of contents on the real parsed document -----------------------------------


@pytest.fixture(scope="module")
def seed_doc(searcher):
    return next(d for d in searcher.documents if d.title == TITLE)


@pytest.fixture(scope="module")
def law_doc():
    from index.structure import parse_file

    return parse_file(LAW)


@pytest.fixture(scope="module")
def plan_doc():
    from index.structure import parse_file

    return parse_file(FIXTURES / "shaoxing-14th-five-year-plan-2021.txt")


def test_item_full_text_is_verbatim_from_its_number(seed_doc):
    item = next(i for i in seed_doc.items if i.number == 12)
    answer = render("item", Draft(document=seed_doc, item=item, limit=WECHAT_LIMIT))
    header, body = answer.text.split("\n", 1)
    assert header == f"《{TITLE}》五、深化教学改革，促进基础教育高质量发展 › 12. 办好普惠优质学前教育"
    assert body.startswith("12.办好普惠优质学前教育。继续落实")
    assert body.endswith("不断提高学前教育质量。")
    assert body in SEED_TEXT
    assert answer.citations[0].item_number == 12 and not answer.truncated


def test_item_of_a_law_keeps_the_article_label(law_doc):
    item = next(i for i in law_doc.items if i.label == "第二条")
    body = item_body(law_doc, item)
    assert body.startswith("第二条") and body in law_doc.text


def test_item_in_parts_when_the_limit_is_small(seed_doc):
    item = next(i for i in seed_doc.items if i.number == 27)
    limit = Limit(max_bytes=400)
    first = render("item", Draft(document=seed_doc, item=item, limit=limit))
    assert first.truncated and size(first.text) <= 400
    assert first.text.endswith("（内容较长，回复 27-2 查看下一部分）")
    parts = first.extra["parts"]
    texts = [render("item", Draft(document=seed_doc, item=item, limit=limit, part=p)).text
             for p in range(1, parts + 1)]
    assert all(size(t) <= 400 for t in texts)
    assert "".join(t.split("\n")[1] for t in texts) == item_body(seed_doc, item)
    beyond = render("item", Draft(document=seed_doc, item=item, limit=limit, part=parts + 1))
    assert beyond.kind == "not_found" and f"只有{parts}部分" in beyond.text


def test_multiline_item_in_parts_keeps_every_line(plan_doc):
    item = max(plan_doc.items, key=lambda i: len(item_body(plan_doc, i)))
    first = render("item", Draft(document=plan_doc, item=item, limit=WECHAT_LIMIT))
    parts = [render("item", Draft(document=plan_doc, item=item, limit=WECHAT_LIMIT, part=p)).text
             for p in range(1, first.extra["parts"] + 1)]
    assert len(parts) > 1 and all(size(p) <= 2048 for p in parts)
    bodies = [p.split("\n", 1)[1] for p in parts]
    bodies = [b.rsplit("\n", 1)[0] for b in bodies[:-1]] + bodies[-1:]  # drop the continuation lines
    assert "\n".join(bodies) == item_body(plan_doc, item)


def test_toc_lists_every_item(seed_doc):
    answer = render("toc", Draft(documents=(seed_doc,), document=seed_doc, limit=WECHAT_LIMIT))
    numbers = [int(m) for m in re.findall(r"^  (\d+)\. ", answer.text, re.M)]
    assert numbers == list(range(1, 28))
    assert "五、深化教学改革，促进基础教育高质量发展" in answer.text
    assert size(answer.text) <= 2048 and not answer.truncated


def test_toc_of_several_documents_lists_them_first(seed_doc, law_doc):
    answer = render("toc", Draft(documents=(seed_doc, law_doc), document=seed_doc, limit=WECHAT_LIMIT))
    first, *_ = answer.text.split("\n\n")
    assert first.splitlines()[1:] == [f"1. 《{TITLE}》（当前）", "2. 《中华人民共和国义务教育法》"]
    assert "  27. 抓好行风政风建设" in answer.text


def test_long_toc_is_cut_with_a_hint(seed_doc, law_doc):
    whole = render("toc", Draft(documents=(seed_doc, law_doc), document=law_doc, limit=WECHAT_LIMIT))
    assert not whole.truncated  # the test excerpt's 14 articles fit in one WeChat reply ...
    limit = Limit(max_bytes=size(whole.text) - 1)  # ... a whole law's 63 do not
    answer = render("toc", Draft(documents=(seed_doc, law_doc), document=law_doc, limit=limit))
    assert answer.truncated and size(answer.text) <= limit.max_bytes
    hint = "（目录较长，未能全部显示；可直接回复条目编号查看全文）"
    assert answer.text.endswith(hint)
    shown = answer.text.removesuffix(hint).rstrip("\n")
    assert whole.text.startswith(shown) and "第一章　总则\n  第一条 " in shown


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("12.", "› 12. 办好普惠优质学前教育"),
        ("第十二条", "› 第十二条 办好普惠优质学前教育"),
        ("", "› 12. 办好普惠优质学前教育"),
    ],
)
def test_citation_numbers_items_as_the_document_does(label, expected):
    citation = Citation("衡阳市教育局2020年工作要点", "五、深化教学改革", 12, "办好普惠优质学前教育", "12", label)
    assert citation.render().endswith(expected)


def test_a_citation_has_the_address_of_its_hit():
    hit = seed_hit(12)
    assert cite_hit(hit).address == hit.address
    assert cite_hit(hit).address.key == ("hengyang-2020", "12")
