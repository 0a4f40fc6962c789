"""index.structure: a document's title comes from the document itself; table rows are quoted whole."""

import pytest

from index.sentences import split_sentences
from index.structure import parse_document

PLAN_BODY = "一、总体要求\n1.坚持公平。\n2.坚持就近。\n"


@pytest.mark.parametrize(("head", "title"), [
    # a letterhead and a document number are the sender, not the title; the title wraps a line
    ("绍兴市教育局\n绍市教〔2021〕12号\n关于做好2021年义务教育招生入学\n工作的通知\n各区、县（市）教育局：\n",
     "关于做好2021年义务教育招生入学工作的通知"),
    # a bare place in 《》 is no title; the plan the notice prints is
    ("《绍兴市》\n关于印发《某某区2022年教育工作要点》的通知\n", "某某区2022年教育工作要点"),
    ("# 中华人民共和国义务教育法\n\n2018年12月29日 修正\n", "中华人民共和国义务教育法"),
    # a preamble sentence quotes a law: the notice's own heading is still the title
    ("某某市教育局关于规范\n校外培训的通知\n各学校：\n为贯彻《中华人民共和国未成年人保护法》，现通知如下：\n",
     "某某市教育局关于规范校外培训的通知"),
    # the 《…》 is the law a local regulation carries out, not the regulation
    ("湖南省实施《中华人民共和国义务教育法》办法\n", "湖南省实施《中华人民共和国义务教育法》办法"),
    ("# 湖南省实施《中华人民共和国义务教育法》办法\n", "湖南省实施《中华人民共和国义务教育法》办法"),
    # a notice forwarding another's: the forwarded one is what it carries
    ("关于转发省教育厅《关于做好2022年教育工作要点的通知》的通知\n", "关于做好2022年教育工作要点的通知"),
])
def test_title_is_the_documents_own(head, title):
    assert parse_document(head + PLAN_BODY, doc_id="d").title == title


def test_title_never_comes_from_the_amendment_history():
    text = ("某某市幼儿园管理条例\n"
            "（1985年5月1日某某市人民代表大会常务委员会通过 根据1997年《某某市托幼园所管理办法》修正）\n"
            "第一章 总则\n第一条 为了规范管理，制定本条例。\n第二条 本条例适用于本市。\n")
    assert parse_document(text, doc_id="d").title == "某某市幼儿园管理条例"


def test_a_table_row_is_one_sentence_with_its_headers():
    row = "项目: 新增学位；含幼儿园 | 目标: 5000个。 | 责任单位: 市教育局"
    sentences = [s.text for s in split_sentences(f"{row}\n普通句子。第二句；")]
    assert sentences == [row, "普通句子。", "第二句；"]


def test_a_table_row_in_an_item_is_quoted_whole():
    text = "一、目标\n1.主要指标如下。\n项目: 新增学位 | 目标: 5000个。 | 年份: 2022\n2.其他。\n"
    item = parse_document(text, doc_id="d").sections[0].items[0]
    assert "项目: 新增学位 | 目标: 5000个。 | 年份: 2022" in [s.text for s in item.sentences]
