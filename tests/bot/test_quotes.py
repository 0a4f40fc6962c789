"""bot.quotes: what an answer quotes from a hit, on items of the seed plan and a law."""

from dataclasses import replace

import pytest

from bot.quotes import (
    MIN_QUOTE_CHARS,
    answering_sentences,
    in_quotes,
    pick_hits,
    sentences,
    short_cite,
)
from index.domain import Hit
from tests.conftest import CORPUS

PLAN = (CORPUS / "hengyang-2020-work-plan.txt").read_text(encoding="utf-8")
ITEM_27 = next(line for line in PLAN.splitlines() if line.startswith("27."))[len("27."):]


def _hit(text: str = ITEM_27, *, chosen: tuple[str, ...] = (), confidence: float = 0.9,
         title: str = "抓好行风政风建设", label: str = "27.", number: int = 27) -> Hit:
    return Hit(doc_id="hy", doc_title="衡阳市教育局2020年工作要点", year=2020, section="八、", item_number=number,
               item_title=title, item_locator=str(number), sentences=chosen or tuple(sentences(text)[1:3]),
               score=1.0, confidence=confidence, item_label=label, text=text)


def test_sentences_are_verbatim_and_cover_the_item():
    parts = sentences(ITEM_27)
    assert len(parts) >= 3
    assert all(p in ITEM_27 for p in parts)
    assert "".join(parts).replace("\n", "") == ITEM_27.replace("\n", "")


def test_pick_hits_keeps_only_those_nearly_as_sure_as_the_best():
    hits = [_hit(confidence=c) for c in (0.9, 0.85, 0.7, 0.88)]
    best, others = pick_hits(hits, max_items=3)
    assert best is hits[0]
    assert others == (hits[1],)  # 0.7 is too far below; the fourth is beyond max_items
    assert pick_hits(hits, max_items=4)[1] == (hits[1], hits[3])
    assert pick_hits(hits, max_items=3, min_confidence=0.86)[1] == ()
    assert pick_hits([], max_items=3) == (None, ())


def test_answering_sentences_drop_the_title_and_keep_within_the_budget():
    title_sentence, first, second, *_ = sentences(ITEM_27)
    hit = _hit(chosen=(title_sentence, first, second))
    assert answering_sentences(hit, budget=1000) == (first, second)  # the citation shows the title
    assert answering_sentences(hit, budget=len(first)) == (first,)  # the first always, the rest if room
    assert answering_sentences(hit, budget=1000, most=1) == (first,)


def test_answering_sentences_fall_back_to_the_items_first_sentences():
    title_sentence, first, *_ = sentences(ITEM_27)
    hit = _hit(chosen=(title_sentence, "表格单元"))  # only the title and a table fragment were chosen
    assert len("表格单元") < MIN_QUOTE_CHARS
    assert answering_sentences(hit, budget=1000)[0] == first


@pytest.mark.parametrize(("label", "quoted", "expected"), [
    ("27.", False, "《衡阳市教育局2020年工作要点》27. 抓好行风政风建设"),
    ("27.", True, "《衡阳市教育局2020年工作要点》27. 抓好行风政风建设"),
    ("第十一条", True, "《衡阳市教育局2020年工作要点》第十一条"),
    ("第十一条", False, "《衡阳市教育局2020年工作要点》第十一条 抓好行风政风建设"),
    # the number as the document writes it, never a digit it does not show
    ("（一）", True, "《衡阳市教育局2020年工作要点》（一）抓好行风政风建设"),
    ("【重点任务3】", False, "《衡阳市教育局2020年工作要点》【重点任务3】抓好行风政风建设"),
    ("三、", False, "《衡阳市教育局2020年工作要点》三、抓好行风政风建设"),
    ("", False, "《衡阳市教育局2020年工作要点》27. 抓好行风政风建设"),
])
def test_short_cite_names_document_and_item_on_one_line(label, quoted, expected):
    assert short_cite(_hit(label=label), quoted=quoted) == expected


def test_in_quotes_joins_neighbours_and_marks_a_gap():
    parts = sentences(ITEM_27)
    together = _hit(chosen=(parts[1], parts[2]))
    apart = _hit(chosen=(parts[1], parts[3]))
    assert in_quotes(together) == f"“{parts[1]}{parts[2]}”"
    assert in_quotes(apart) == f"“{parts[1]}……{parts[3]}”"
    assert in_quotes(replace(apart, text="")) == f"“{parts[1]}{parts[3]}”"  # no text to tell: no gap shown
