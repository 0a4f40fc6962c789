"""Issue 9, defects 5 and 6: a Big5 file is read as Big5 (and says so), a zip-bomb .docx is
refused from its central directory before anything is inflated, and untrusted files are
parsed in a child process with a memory and a time limit."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest

from index.errors import CorpusError
from index.library import add_paths, list_documents
from index.loader import MAX_DOCX_XML_BYTES, load_text
from index.sandbox import parse_isolated

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hardening"
PLAN = FIXTURES / "plan.txt"
BIG5 = FIXTURES / "plan-big5.txt"  # plan.txt in traditional characters, saved as Big5


def docx_bomb(path: Path, inflated_mib: int, *, text: bytes = b"a") -> Path:
    """A real .docx whose document.xml is one text node of ``inflated_mib`` MiB (deflated to ~0.1 %)."""
    out = io.BytesIO()
    docx.Document().save(out)
    with zipfile.ZipFile(out) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, source.read(item))
                continue
            head = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.'
                    b'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>')
            tail = b"</w:t></w:r></w:p></w:body></w:document>"
            with bomb.open("word/document.xml", "w", force_zip64=True) as member:
                member.write(head)
                block = text * (2**20 // len(text))
                for _ in range(inflated_mib):
                    member.write(block)
                member.write(tail)
    return path


# -- 5. Big5 --------------------------------------------------------------------------------------


def test_big5_text_is_read_as_big5_not_as_gb18030_mojibake() -> None:
    loaded = load_text(BIG5)
    assert loaded.encoding == "big5"
    assert loaded.text.splitlines()[0] == "示範縣教育局2021年工作要點"


@pytest.mark.parametrize(("encoding", "expected"), [("utf-8", "utf-8"), ("gb18030", "gb18030"), ("gbk", "gb18030"),
                                                    ("utf-8-sig", "utf-8"), ("utf-16", "utf-16")])
def test_the_encoding_used_is_reported(tmp_path, encoding, expected) -> None:
    path = tmp_path / "plan.txt"
    path.write_bytes(PLAN.read_text(encoding="utf-8").encode(encoding))
    loaded = load_text(path)
    assert loaded.encoding == expected
    assert loaded.text == PLAN.read_text(encoding="utf-8").strip()


def test_the_library_keeps_the_encoding_of_a_big5_document(tmp_path) -> None:
    [record] = add_paths(tmp_path, [BIG5])
    assert (record.encoding, record.title, record.year) == ("big5", "示範縣教育局2021年工作要點", 2021)
    assert list_documents(tmp_path)[0].encoding == "big5"


# -- 6. zip bombs and the sandbox -------------------------------------------------------------------


def test_a_zip_bomb_docx_is_refused_before_it_is_inflated(tmp_path) -> None:
    bomb = docx_bomb(tmp_path / "bomb.docx", 256)
    assert bomb.stat().st_size < 2 * 2**20
    with pytest.raises(CorpusError, match=r"bomb.docx unpacks to 25\d MiB of XML .* over the limit of 64 MiB"):
        load_text(bomb)  # said from the central directory: nothing was inflated (how long it took is for bench)


def test_a_docx_just_under_the_limit_is_still_read(tmp_path) -> None:
    path = docx_bomb(tmp_path / "big.docx", 2, text="政策".encode())
    assert "政策政策" in load_text(path).text[:100]
    assert MAX_DOCX_XML_BYTES == 64 * 2**20


def test_the_sandbox_parses_like_the_loader() -> None:
    parsed = parse_isolated(BIG5, doc_id="plan-big5")
    assert parsed.encoding == "big5"
    assert parsed.document.title == "示範縣教育局2021年工作要點" and len(parsed.document.items) == 4


def test_the_sandbox_reports_the_corpus_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("今天天气很好。", encoding="utf-8")
    with pytest.raises(CorpusError, match="notes.txt"):
        add_paths(tmp_path / "data", [path])


def test_the_sandbox_enforces_its_memory_limit(tmp_path) -> None:
    path = docx_bomb(tmp_path / "heavy.docx", 20, text="政策".encode())
    with pytest.raises(CorpusError, match=r"heavy.docx: parsing needs more than 60 MiB of memory"):
        parse_isolated(path, doc_id="heavy", memory_mb=60)


def test_the_sandbox_enforces_its_time_limit() -> None:
    with pytest.raises(CorpusError, match=r"plan.txt: parsing took longer than 0 s"):
        parse_isolated(PLAN, doc_id="plan", timeout_s=0.05)  # no interpreter starts and parses that fast
