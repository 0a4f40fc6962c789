"""Tests of index.structure on the real corpus and on small synthetic texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.domain import Document
from index.sentences import split_sentences
from index.structure import parse_document, parse_file
from tests.conftest import FIXTURES, SEED, SEED_DOCX, SEED_PDF

HENGYANG_FORMATS = [SEED, SEED_DOCX, SEED_PDF]
SHAOXING = FIXTURES / "shaoxing-14th-five-year-plan-2021.txt"
LAWS = [  # file, title, year (latest amendment), chapters and articles in the excerpt
    ("yiwujiaoyufa-2018.md", "中华人民共和国义务教育法", 2018, 2, 14),
    ("jiaoshifa.md", "中华人民共和国教师法", 2009, 3, 13),
    ("xueqianjiaoyufa-2024.txt", "中华人民共和国学前教育法", 2024, 1, 12),
]
LAW_IDS = [row[0] for row in LAWS]
ALL_FILES = [*HENGYANG_FORMATS, SHAOXING, *(FIXTURES / law[0] for law in LAWS)]
CN = "一二三四五六七八九十"


@pytest.fixture(scope="module")
def parsed() -> dict[str, Document]:
    return {f"{p.name}": parse_file(p) for p in ALL_FILES}


def _squash(text: str) -> str:
    return "".join(text.split())


# -- the seed document in three formats ------------------------------------------------------------


@pytest.mark.parametrize("path", HENGYANG_FORMATS, ids=lambda p: p.suffix)
def test_hengyang_structure(parsed: dict[str, Document], path: Path) -> None:
    doc = parsed[path.name]
    assert doc.doc_id == "hengyang-2020-work-plan"
    assert doc.format == path.suffix[1:]
    assert (doc.title, doc.year) == ("衡阳市教育局2020年工作要点", 2020)
    assert [s.label for s in doc.sections] == [f"{n}、" for n in CN[:8]]
    assert doc.sections[4].heading == "五、深化教学改革，促进基础教育高质量发展"
    assert [i.number for i in doc.items] == list(range(1, 28))
    assert [i.locator for i in doc.items] == [str(n) for n in range(1, 28)]
    assert [len(s.items) for s in doc.sections] == [2, 3, 3, 3, 5, 3, 2, 6]
    items = {i.number: i for i in doc.items}
    assert items[12].title == "办好普惠优质学前教育"
    assert items[12].label == "12."
    assert items[12].text.startswith("办好普惠优质学前教育。继续落实")
    assert "新改扩建公办中小学30所" in items[3].text
    assert items[3].sentences[1].text == "新改扩建公办中小学30所，新增义务教育学位2.5万个以上；"
    assert items[3].sentences[4].text.endswith("普惠性幼儿园在园幼儿比例分别达50%、80%以上。")
    assert doc.preamble[0].text == "关于印发《衡阳市教育局2020年工作要点》的通知"


def test_hengyang_formats_agree(parsed: dict[str, Document]) -> None:
    txt, *others = (parsed[p.name] for p in HENGYANG_FORMATS)
    for doc in others:
        assert [s.heading for s in doc.sections] == [s.heading for s in txt.sections]
        assert [(i.locator, i.title) for i in doc.items] == [(i.locator, i.title) for i in txt.items]
        assert [_squash(i.text) for i in doc.items] == [_squash(i.text) for i in txt.items]
        assert [[s.text for s in i.sentences] for i in doc.items] == [[s.text for s in i.sentences]
                                                                      for i in txt.items]
        assert [s.text for s in doc.preamble] == [s.text for s in txt.preamble]


# -- laws -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "title", "year", "chapters", "articles"), LAWS, ids=LAW_IDS)
def test_law_chapters_and_articles(parsed: dict[str, Document], name: str, title: str, year: int,
                                   chapters: int, articles: int) -> None:
    doc = parsed[name]
    assert (doc.title, doc.year) == (title, year)
    assert [s.label.strip() for s in doc.sections] == [f"第{n}章" for n in CN[:chapters]]
    assert doc.sections[0].title.replace(" ", "") == "总则"
    assert doc.sections[0].heading in doc.text  # as the document writes it
    assert [i.number for i in doc.items] == list(range(1, articles + 1))
    assert [i.locator for i in doc.items] == [str(n) for n in range(1, articles + 1)]
    assert doc.items[11].label == "第十二条"
    assert all(i.title and len(i.title) <= 25 for i in doc.items)


def test_law_lists_stay_in_their_article(parsed: dict[str, Document]) -> None:
    doc = parsed["jiaoshifa.md"]
    teacher = doc.items[6]
    assert teacher.title == "教师享有下列权利" and teacher.text.count("（") == 6
    article = doc.items[10]
    assert article.label == "第十一条"
    listed = "（一）取得幼儿园教师资格，应当具备幼儿师范学校毕业及其以上学历；"
    assert listed in [s.text for s in article.sentences]
    # the paragraph after the list still belongs to the article; the next article starts afresh
    assert article.text.endswith("国家教师资格考试制度由国务院规定。")
    assert doc.items[11].text.startswith("本法实施前已经在学校")
    law = parsed["yiwujiaoyufa-2018.md"]
    assert law.items[1].title == "国家实行九年义务教育制度"
    assert law.items[0].title.endswith("…")
    assert law.items[10].text.startswith("凡年满六周岁的儿童")


# -- a plan with a table of contents and restarting numbers -----------------------------------------


def test_shaoxing_skips_its_table_of_contents(parsed: dict[str, Document]) -> None:
    doc = parsed[SHAOXING.name]
    assert doc.year == 2021
    assert doc.title.startswith("绍兴市教育事业")
    # the table of contents lists 十 sections and two annexes; the excerpt's text holds three sections
    numbers = [s.number for s in doc.sections]
    assert numbers == ["一", "二", "三"]
    first = doc.sections[0].items[0]
    assert first.text.startswith("现实基础和发展形势\n“十三五”时期")
    assert not any("……" in i.text for i in doc.items)
    assert not any("……" in s.text for s in doc.preamble)


def test_shaoxing_locators_are_unique_paths(parsed: dict[str, Document]) -> None:
    doc = parsed[SHAOXING.name]
    assert [i.locator for i in doc.items] == [
        "一", "二/（一）", *(f"二/（二）/{n}" for n in range(1, 6)), "二/（三）", "二/（四）",
        "三", *(f"三/重点任务{n}" for n in range(1, 5))]
    # numbering restarts under each heading: four items are number 1, each with its own path
    assert [i.locator for i in doc.items if i.number == 1] == ["一", "二/（一）", "二/（二）/1", "三/重点任务1"]
    principles = [i for i in doc.items if i.subsection == "（二）基本原则"]
    assert [(i.number, i.title) for i in principles][0] == (1, "坚持党的领导")
    tasks = [i for i in doc.items if i.label.startswith("【重点任务")]
    assert [i.number for i in tasks] == list(range(1, 5))
    assert tasks[1].title == "促进学生德智体美劳全面发展"


# -- invariants over every document ---------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_offsets_index_document_text(parsed: dict[str, Document], path: Path) -> None:
    doc = parsed[path.name]
    sentences = [*doc.preamble, *(s for i in doc.items for s in i.sentences)]
    assert sentences
    for s in sentences:
        assert doc.text[s.start:s.end] == s.text
        assert s.text == s.text.strip() and s.text
    for item in doc.items:
        assert doc.text[item.start:item.end] == item.text
        assert all(item.start <= s.start and s.end <= item.end for s in item.sentences)
    starts = [s.start for s in sentences]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


# -- synthetic documents ------------------------------------------------------------------------


def test_numbers_must_be_sequential_to_open_items() -> None:
    text = ("一、任务\n1.第一项。内容。\n3.不是新条目。\n（1）子项一；\n（2）子项二。\n"
            "2.第二项。内容。\n二、其他\n3.第三项。\n2020年工作。")
    doc = parse_document(text, doc_id="t")
    assert [(i.locator, i.title) for i in doc.items] == [("1", "第一项"), ("2", "第二项"), ("3", "第三项")]
    assert "3.不是新条目。\n（1）子项一；" in doc.items[0].text
    assert doc.items[2].text == "第三项。\n2020年工作。"


def test_an_item_may_open_with_a_date_but_a_decimal_opens_none() -> None:
    text = ("一、时间安排\n1.8月25日前完成校舍安全排查。\n2.9月1日正式开学。\n3.2021年秋季学期起实行课后服务。\n"
            "二、经费\n1.生均经费提高到2.5万元。\n2.5万名教师参加培训。\n")
    doc = parse_document(text, doc_id="t")
    assert [(i.locator, i.text.split("。")[0]) for i in doc.items] == [
        ("一/1", "8月25日前完成校舍安全排查"), ("一/2", "9月1日正式开学"), ("一/3", "2021年秋季学期起实行课后服务"),
        ("二/1", "生均经费提高到2.5万元")]
    assert doc.items[-1].text.endswith("2.5万名教师参加培训。")  # a number, not item 2


def test_numbering_that_restarts_gets_path_locators() -> None:
    text = "一、甲\n（一）子甲\n1.一项。\n2.二项。\n（二）子乙\n1.三项。\n二、乙\n1.四项。"
    doc = parse_document(text, doc_id="t")
    assert [i.locator for i in doc.items] == ["一/（一）/1", "一/（一）/2", "一/（二）/1", "二/1"]
    assert [i.subsection for i in doc.items] == ["（一）子甲", "（一）子甲", "（二）子乙", ""]


def test_markdown_law_with_sections_and_cross_references() -> None:
    text = ("# 某某法\n\n2020年1月1日 通过\n\n## 第一章　总则\n\n### 第一节　一般规定\n\n"
            "第一条　为了测试，制定本法。\n\n第二条 依照本法\n第一条规定的，适用本法。\n\n"
            "（一）第一种情形；\n\n## 第二章　附则\n\n第三条 本法自公布之日起施行。")
    doc = parse_document(text, doc_id="law", format="md")
    assert (doc.title, doc.year) == ("某某法", 2020)
    assert [s.heading for s in doc.sections] == ["第一章　总则", "第二章　附则"]
    assert [(s.number, s.title) for s in doc.sections] == [("一", "总则"), ("二", "附则")]
    assert [i.label for i in doc.items] == ["第一条", "第二条", "第三条"]
    assert doc.items[0].subsection == "第一节　一般规定"
    assert doc.items[1].text == "依照本法\n第一条规定的，适用本法。\n\n（一）第一种情形；"


def test_a_laws_bare_contents_are_skipped() -> None:
    # a local regulation lists its chapters under 目录 without leaders; the body repeats them
    text = ("某某市学前教育条例\n目　　录\n第一章　总　　则\n第二章　规划与建设\n第三章　附　　则\n"
            "第一章　总　　则\n第一条　为了规范学前教育，制定本条例。\n第二条　本条例适用于本市。\n"
            "第二章　规划与建设\n第三条　新建居住区应当配套建设幼儿园。\n"
            "第三章　附　　则\n第四条　本条例自2020年3月1日起施行。\n")
    doc = parse_document(text, doc_id="t")
    assert [(s.number, [i.number for i in s.items]) for s in doc.sections] == [
        ("一", [1, 2]), ("二", [3]), ("三", [4])]
    assert doc.items[1].text == "本条例适用于本市。"  # the next chapter's heading is not its text


def test_contents_without_a_repeat_are_not_skipped() -> None:
    text = "某某方案\n目录\n一、总体要求\n坚持公平。\n二、任务\n1.新建学校。\n"
    doc = parse_document(text, doc_id="t")
    assert [s.heading for s in doc.sections] == ["一、总体要求", "二、任务"]


def test_a_sub_section_that_is_one_sentence_is_an_item() -> None:
    # a notice's （一）（二） under 二、 are its content: nothing of them may be lost
    text = ("关于做好2021年义务教育\n招生入学工作的通知\n各区县教育局：\n"
            "为贯彻《中华人民共和国义务教育法》，通知如下。\n"
            "一、基本原则\n坚持免试就近入学。\n二、招生对象\n（一）小学招收年满6周岁的适龄儿童。\n"
            "（二）初中招收小学毕业生。\n（三）指导思想\n三、时间安排\n1.报名时间为7月10日。\n")
    doc = parse_document(text, doc_id="t")
    assert doc.title == "关于做好2021年义务教育招生入学工作的通知"
    assert [(i.locator, i.text) for i in doc.items] == [
        ("一", "基本原则\n坚持免试就近入学。"),
        ("二/（一）", "小学招收年满6周岁的适龄儿童。"),
        ("二/（二）", "初中招收小学毕业生。"),
        ("三/1", "报名时间为7月10日。"),
    ]  # a bare heading with nothing under it (（三）指导思想) is no item
    assert doc.items[1].title == "小学招收年满6周岁的适龄儿童"


def test_a_notices_closing_block_is_no_part_of_its_last_item() -> None:
    text = ("关于做好暑期安全工作的通知\n各学校：\n一、加强教育\n放假前开展一次专题教育。\n二、值班安排\n"
            "假期实行24小时值班。\n\n某某市教育局\n2021年6月30日\n（此件公开发布）\n"
            "抄送：市政府办公室\n某某市教育局办公室 2021年6月30日印发\n")
    doc = parse_document(text, doc_id="t")
    assert doc.items[-1].text == "值班安排\n假期实行24小时值班。"


def test_items_without_sections_get_one_unnamed_section() -> None:
    doc = parse_document("通知\n1.做好甲。\n2.做好乙。", doc_id="t")
    assert len(doc.sections) == 1 and doc.sections[0].heading == ""
    assert [i.title for i in doc.items] == ["做好甲", "做好乙"]
    assert [s.text for s in doc.preamble] == ["通知"]


@pytest.mark.parametrize(("text", "title", "year"), [
    ("关于印发《某市2021年工作要点》的通知\n正文。", "某市2021年工作要点", 2021),
    ("# 标题文件\n\n《另一个文件》提到。", "标题文件", None),
    ("中华人民共和国某法\n\n1999年4月1日 通过\n2012年3月2日 修正\n", "中华人民共和国某法", 2012),
    ("这是一段很长的没有结构的正文，讲了很多事情，但是没有任何标题和编号，也没有句号结尾的短行", "t", None),
])
def test_title_and_year(text: str, title: str, year: int | None) -> None:
    doc = parse_document(text, doc_id="t")
    assert (doc.title, doc.year) == (title, year)


PATHOLOGICAL = "\n".join(["…" * 50_000, "（" * 50_000 + "。", "1." * 20_000, "第" * 30_000 + "条", "。" * 50_000])


@pytest.mark.parametrize("text", ["", "\n\n  \n", "没有结构的文字。第二句。", "1\n2\n3", "（" * 500,
                                  "2.5\n30%\n二、", pytest.param(PATHOLOGICAL, id="pathological")])
def test_unstructured_text_gives_no_sections(text: str) -> None:
    # no time limit: a wall-clock assert fails whenever the machine is busy; speed is scripts/bench.py's job
    doc = parse_document(text, doc_id="t")
    assert doc.sections == ()
    assert "".join(s.text for s in doc.preamble) == "".join(text.split())


# -- sentences ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("新增学位2.5万个以上；比例达50%、80%以上。", ["新增学位2.5万个以上；", "比例达50%、80%以上。"]),
    ("落实《规划（2018～2020年）》。下一句", ["落实《规划（2018～2020年）》。", "下一句"]),
    ("提出（试行。暂定）要求。他说“好。再见。”然后走了。",
     ["提出（试行。暂定）要求。", "他说“好。再见。”然后走了。"]),
    ("真的吗？！是的!  Next one? yes", ["真的吗？！", "是的!", "Next one?", "yes"]),
    ("见 http://x.cn/?a=1;b=2 网址。", ["见 http://x.cn/?a=1;b=2 网址。"]),
    ("  第一行\n\n   第二行。  \n", ["第一行", "第二行。"]),
    ("不成对的（括号。照样断句。", ["不成对的（括号。", "照样断句。"]),
])
def test_split_sentences(text: str, expected: list[str]) -> None:
    sentences = split_sentences(text, base=100)
    assert [s.text for s in sentences] == expected
    assert all(text[s.start - 100:s.end - 100] == s.text for s in sentences)


def test_split_sentences_of_empty_text() -> None:
    assert split_sentences("") == ()
    assert split_sentences(" \n \u3000") == ()


def test_law_without_chapters_and_explicit_doc_id(tmp_path: Path) -> None:
    path = tmp_path / "短法.txt"
    path.write_text("某条例\n第一条 为了测试。\n第二条 依照第一条执行。\n第三条 自公布之日起施行。", encoding="utf-8")
    assert parse_file(path).doc_id == "短法"
    doc = parse_file(path, doc_id="rules")
    assert doc.doc_id == "rules" and doc.title == "某条例"
    assert [s.heading for s in doc.sections] == [""]
    assert [(i.locator, i.label) for i in doc.items] == [("1", "第一条"), ("2", "第二条"), ("3", "第三条")]


def test_a_plan_in_parts_has_the_parts_as_sections_and_their_headings_as_subsections() -> None:
    # each part numbers its 一、二、 anew: read as sections, part two was lost inside part one
    lines = ["某市教育局2021年工作要点", "2021年是开局之年。",
             "第一部分 2020年工作回顾", "一、教育投入持续加大", "全年新建学校12所。",
             "二、教育质量稳步提升", "上线率60%。",
             "第二部分 2021年工作要点", "一、加强党的建设", "1.加强基层党组织建设。", "二、发展学前教育",
             "2.新建公办幼儿园20所。", "3.规范民办幼儿园收费。"]
    doc = parse_document("\n".join(lines), doc_id="parts")
    assert [s.heading for s in doc.sections] == ["第一部分 2020年工作回顾", "第二部分 2021年工作要点"]
    review, plan = doc.sections
    assert [(i.locator, i.title) for i in review.items] == [("一/一", "教育投入持续加大"),
                                                            ("一/二", "教育质量稳步提升")]
    assert [(i.locator, i.subsection) for i in plan.items] == [
        ("二/一/1", "一、加强党的建设"), ("二/二/2", "二、发展学前教育"), ("二/二/3", "二、发展学前教育")]
    assert plan.items[1].text == "新建公办幼儿园20所。"


@pytest.mark.parametrize("dot", [".", "．"])
def test_sections_numbered_with_a_dot_instead_of_the_comma(dot: str) -> None:
    lines = ["关于做好招生工作的通知", "各学校：", f"一{dot}招生对象", "凡年满6周岁的儿童应当入学。",
             f"二{dot}招生原则", "坚持免试就近入学。", "三.5倍的说法不是标题。"]
    doc = parse_document("\n".join(lines), doc_id="dots")
    assert [s.title for s in doc.sections] == ["招生对象", "招生原则"]
    assert doc.sections[1].items[0].text.endswith("三.5倍的说法不是标题。")


def test_an_attachment_named_but_not_included_is_no_section() -> None:
    lines = ["关于做好招生工作的通知", "一、招生对象", "凡年满6周岁的儿童应当入学。", "二、招生原则",
             "坚持免试就近入学。", "", "附件", "", "衡阳市教育局", "2021年6月1日"]
    doc = parse_document("\n".join(lines), doc_id="bare-attachment")
    assert [s.title for s in doc.sections] == ["招生对象", "招生原则"]  # not 附件 titled 衡阳市教育局
    assert doc.sections[-1].items[-1].text == "招生原则\n坚持免试就近入学。"
