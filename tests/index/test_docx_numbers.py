"""index.docx_numbers: Word's automatic list numbers reach the parser as the text people see."""

from __future__ import annotations

from pathlib import Path

import docx
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls

from index.loader import load_text
from index.structure import parse_file

# A two-level list as a Chinese notice numbers it: 一、 for sections, （1） for items.
ABSTRACT = f"""<w:abstractNum {nsdecls("w")} w:abstractNumId="90">
  <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/><w:lvlText w:val="%1、"/></w:lvl>
  <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="（%2）"/></w:lvl>
</w:abstractNum>"""
NUM = f'<w:num {nsdecls("w")} w:numId="90"><w:abstractNumId w:val="90"/></w:num>'


def _numbered(paragraph, level: int) -> None:
    ppr = paragraph._p.get_or_add_pPr()
    ppr.append(parse_xml(f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="90"/></w:numPr>'))


def _notice(path: Path) -> Path:
    document = docx.Document()
    numbering = document.part.numbering_part.element
    numbering.insert(0, parse_xml(ABSTRACT))  # abstract definitions come before the instances
    numbering.append(parse_xml(NUM))
    document.add_paragraph("关于做好暑期安全工作的通知")
    for text, level in [("加强安全教育", 0), ("放假前开展一次专题教育。", 1), ("落实家校联系。", 1),
                        ("做好值班安排", 0), ("实行24小时值班。", 1)]:
        _numbered(document.add_paragraph(text), level)
    document.add_paragraph("特此通知。")
    document.save(path)
    return path


def test_automatic_numbers_are_written_before_the_paragraphs(tmp_path):
    lines = load_text(_notice(tmp_path / "notice.docx")).text.splitlines()
    assert lines == ["关于做好暑期安全工作的通知", "一、加强安全教育", "（1）放假前开展一次专题教育。",
                     "（2）落实家校联系。", "二、做好值班安排", "（1）实行24小时值班。", "特此通知。"]


def test_a_numbered_docx_parses_into_its_sections_and_items(tmp_path):
    doc = parse_file(_notice(tmp_path / "notice.docx"))
    assert [s.heading for s in doc.sections] == ["一、加强安全教育", "二、做好值班安排"]
    assert [(i.locator, i.title) for i in doc.items][:2] == [("一/（1）", "放假前开展一次专题教育"),
                                                             ("一/（2）", "落实家校联系")]


def test_the_list_number_style_counts_on_and_bullets_give_no_label(tmp_path):
    document = docx.Document()
    document.add_paragraph("一、办好学前教育")
    document.add_paragraph("扩大普惠资源。", style="List Number")
    document.add_paragraph("规范办园行为。", style="List Number")
    document.add_paragraph("二、建设教师队伍")
    document.add_paragraph("提高教师待遇。", style="List Number")
    document.add_paragraph("要点", style="List Bullet")
    document.save(tmp_path / "plan.docx")
    lines = load_text(tmp_path / "plan.docx").text.splitlines()
    assert lines == ["一、办好学前教育", "1.扩大普惠资源。", "2.规范办园行为。", "二、建设教师队伍", "3.提高教师待遇。",
                     "要点"]
