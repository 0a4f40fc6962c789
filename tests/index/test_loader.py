"""Tests of index.loader: every format, encodings, normalisation and every way a file can be bad."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from pypdf import PdfWriter

from index.errors import CorpusError
from index.loader import SUPPORTED_FORMATS, LoadedText, _pdf_text, load_text
from index.reflow import hard_wrapped
from index.structure import parse_file
from tests.conftest import FIXTURES, LAW, SEED, SEED_DOCX, SEED_PDF

HENGYANG_FORMATS = [SEED, SEED_DOCX, SEED_PDF]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


# -- good files ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", HENGYANG_FORMATS, ids=lambda p: p.suffix)
def test_each_format_loads_to_clean_text(path: Path) -> None:
    loaded = load_text(path)
    assert isinstance(loaded, LoadedText)
    assert loaded.format == path.suffix[1:]
    assert loaded.source == str(path)
    assert "[bookmark" not in loaded.text and "\r" not in loaded.text
    assert all(line == line.rstrip() for line in loaded.text.split("\n"))
    assert loaded.text.startswith("关于印发《衡阳市教育局2020年工作要点》的通知")


def test_docx_and_pdf_give_the_txt_lines() -> None:
    reference = _lines(load_text(SEED).text)
    for path in HENGYANG_FORMATS[1:]:
        assert _lines(load_text(path).text) == reference, path.name


def test_pdf_digits_have_no_inserted_spaces() -> None:
    text = load_text(HENGYANG_FORMATS[2]).text
    assert "新改扩建公办中小学30所，新增义务教育学位2.5万个以上；" in text


def test_markdown_loads_verbatim_without_comments() -> None:
    text = load_text(LAW).text
    assert text.startswith("# 中华人民共和国义务教育法")
    assert "## 第一章　总则" in text  # full-width space kept
    assert "<!--" not in text


def test_text_is_not_nfkc_normalised(tmp_path: Path) -> None:
    path = tmp_path / "fullwidth.txt"
    path.write_text("１２．办好学前教育（普惠），比例达５０％。\n", encoding="utf-8")
    assert load_text(path).text == "１２．办好学前教育（普惠），比例达５０％。"


def test_newlines_artifacts_and_trailing_spaces_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "messy.txt"
    path.write_bytes("[bookmark: _GoBack]\r\n\r\n一、总体要求  \r\n1.内容。\t\r2.更多。\u3000\n\n".encode())
    assert load_text(path).text == "一、总体要求\n1.内容。\n2.更多。"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030", "gbk"])
def test_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / f"{encoding}.txt"
    text = "关于印发《工作要点》的通知\n一、加强党的建设\n1.抓好党的政治建设。新增学位2.5万个。"
    path.write_bytes(text.encode(encoding))
    assert load_text(path).text == text


def test_gb18030_hengyang_parses_like_utf8(tmp_path: Path) -> None:
    path = tmp_path / "hengyang-gbk.txt"
    path.write_bytes(SEED.read_text(encoding="utf-8").encode("gb18030"))
    doc = parse_file(path)
    assert len(doc.items) == 27
    assert doc.title == "衡阳市教育局2020年工作要点"


def test_docx_tables_are_kept_in_body_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("一、基本情况")
    table = document.add_table(rows=3, cols=2)
    for row, (name, age) in zip(table.rows, [("姓名", "年龄"), ("张三", "10"), ("李四", "")], strict=True):
        row.cells[0].text, row.cells[1].text = name, age
    document.add_paragraph("二、下一步工作")
    path = tmp_path / "table.docx"
    document.save(path)
    assert load_text(path).text == "一、基本情况\n姓名: 张三 | 年龄: 10\n姓名: 李四\n二、下一步工作"


def test_pdf_reflow_joins_wrapped_lines_and_keeps_paragraphs() -> None:
    full = "文" * 45  # lines that fill the text width (90 half-width units) were wrapped
    pages = [
        f"一、总体要求\n1.第一项。{full[:40]}\n{full}\n结束了。\n2.第二项。\n3",  # "3": a page number
        f"{full}\n新改扩建公办中小学 30 所，学位 2.5 万个，达 50 %。\n- 4 -",
    ]
    assert _pdf_text(pages).split("\n") == [
        "一、总体要求",
        f"1.第一项。{full[:40]}{full}结束了。",
        "2.第二项。",
        f"{full}新改扩建公办中小学30所，学位2.5万个，达50%。",
    ]


def test_pdf_full_line_ending_a_paragraph_breaks_before_a_marker() -> None:
    full = "文" * 44
    item = f"12.{'项' * 43}"
    # a marker after a full line ending in 。 starts a paragraph; after "、" it is a wrapped cross-reference
    assert _pdf_text([f"{full}。\n{item}\n{full}、\n第十二条规定的情形。"]).split("\n") == [
        f"{full}。", f"{item}{full}、第十二条规定的情形。"]
    dated = f"2.9月1日{'开' * 41}"  # an item opening with a date is a marker too
    assert _pdf_text([f"{full}。\n{dated}"]).split("\n") == [f"{full}。", dated]


def test_pdf_keeps_spaces_between_latin_words_and_after_punctuation() -> None:
    assert _pdf_text(["Hello World，中文 English"]) == "Hello World，中文English"
    assert _pdf_text(["工作， 构建家庭"]) == "工作， 构建家庭"  # as the .txt writes it


def test_owner_password_only_pdf_is_opened(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="", owner_password="owner")
    path = tmp_path / "owner.pdf"
    writer.write(path)
    with pytest.raises(CorpusError, match="no text layer"):  # opened, then found blank
        load_text(path)


# -- bad files -------------------------------------------------------------------------------


def _pdf(password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _zip_without_docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    return out.getvalue()


BAD: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty.txt", lambda: b"", "is empty"),
    ("blank.md", lambda: " \n\t\r\n\u3000\n".encode(), "is empty"),
    ("bookmark-only.txt", lambda: b"[bookmark: _GoBack]\n", "is empty"),
    ("plan.xls", lambda: b"\xd0\xcf\x11\xe0", "unsupported format '.xls'; supported formats: .txt, .md"),
    ("README", lambda: b"text", "unsupported format"),
    ("text.pdf", lambda: "一、这其实是文本".encode(), "is not a PDF"),
    ("text.docx", lambda: "一、这其实是文本".encode(), "is not a .docx file (not a zip archive)"),
    ("legacy.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, "legacy Word .doc"),
    ("truncated.docx", lambda: b"PK\x03\x04garbage", "corrupt .docx"),
    ("other-zip.docx", _zip_without_docx, "corrupt .docx"),
    ("truncated.pdf", lambda: HENGYANG_FORMATS[2].read_bytes()[:5000], "corrupt PDF"),
    ("locked.pdf", lambda: _pdf(password="secret"), "is password-protected"),
    ("scanned.pdf", _pdf, "has no text layer"),
    ("noise.txt", lambda: b"abc\x80\xff\xfe\x81def" * 10, "cannot be decoded"),
    ("really-a-pdf.txt", _pdf, "is really a PDF"),
    ("bad-bom.txt", lambda: b"\xef\xbb\xbf\xff\xfe\x80", "BOM but is not valid"),
]


@pytest.mark.parametrize(("name", "content", "fragment"), BAD, ids=[row[0] for row in BAD])
def test_bad_file_is_a_corpus_error_naming_it(tmp_path: Path, name: str, content: Callable[[], bytes],
                                              fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content())
    with pytest.raises(CorpusError) as caught:
        load_text(path)
    assert fragment in str(caught.value)
    assert name in str(caught.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="missing.txt does not exist"):
        load_text(tmp_path / "missing.txt")
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(CorpusError, match="folder.md is a directory"):
        load_text(tmp_path / "folder.md")


def test_supported_formats_are_listed() -> None:
    assert SUPPORTED_FORMATS == ("txt", "md", "docx", "pdf")


def test_damaged_docx_is_a_corpus_error_never_a_crash(tmp_path) -> None:
    import random

    original = SEED_DOCX.read_bytes()
    rng = random.Random(7)
    for n in range(60):
        data = bytearray(original)
        if n % 3 == 0:
            data = data[: rng.randrange(100, len(data))]
        else:
            for _ in range(8):
                data[rng.randrange(30, len(data))] ^= 0xFF
        path = tmp_path / f"damaged-{n}.docx"
        path.write_bytes(bytes(data))
        try:
            load_text(path)
        except CorpusError as exc:
            assert path.name in str(exc)


def test_markdown_bold_is_formatting_not_words(tmp_path: Path) -> None:
    path = tmp_path / "notice.md"
    path.write_text("**某某市教育局办公室**\n\n**关于开展2022年校园安全检查的通知**\n\n各学校：\n\n"
                    "**一、检查内容**\n\n（一）校舍**安全**。\n\n（二）食品安全。\n\n**二、时间安排**\n\n3月1日至31日。\n",
                    encoding="utf-8")
    assert "**" not in load_text(path).text
    doc = parse_file(path)
    assert doc.title == "关于开展2022年校园安全检查的通知"  # the bold letterhead is still a letterhead
    assert [s.title for s in doc.sections] == ["检查内容", "时间安排"]
    assert doc.items[0].text == "校舍安全。"


WRAPPED = """关于做好秋季学期开学工作的通知
各县市区教育局，市直各学校：
    为确保秋季学期开学工作平稳有序，现将有关事项通
知如下：
    一、做好开学准备
    1.各校要在8月25日前完成校舍安全排查工作，对排查出
的隐患要建立台账，限期整改到位。
    2.各校不得提前开学或推迟开学，不得提前组织学生返校
补课，不得以任何名义收取补课费用。
    二、加强疫情防控
    师生返校前14天要做好健康监测，返校时须持健康码绿
码，无异常方可入校。
"""


def test_a_hard_wrapped_text_file_is_read_as_paragraphs(tmp_path: Path) -> None:
    assert hard_wrapped(WRAPPED.split("\n"))
    path = tmp_path / "wrapped.txt"
    path.write_text(WRAPPED, encoding="utf-8")
    doc = parse_file(path)
    first = "各校要在8月25日前完成校舍安全排查工作，对排查出的隐患要建立台账，限期整改到位。"
    assert [s.text for s in doc.items[0].sentences] == [first]
    assert "返校时须持健康码绿码，无异常方可入校。" in doc.items[-1].text


@pytest.mark.parametrize("name", ["hengyang-2020-work-plan.txt", "shaoxing-14th-five-year-plan-2021.txt",
                                  "xueqianjiaoyufa-2024.txt", "yiwujiaoyufa-2018.md", "jiaoshifa.md"])
def test_a_text_file_of_one_paragraph_per_line_is_not_rewrapped(name: str) -> None:
    # long paragraph lines; the 绍兴 plan's table cells and contents leaders fill no width mid-sentence
    assert not hard_wrapped((FIXTURES / name).read_text(encoding="utf-8").split("\n"))
