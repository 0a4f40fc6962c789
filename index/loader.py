"""Read a corpus file (.txt, .md, .docx, .pdf) into normalised plain text.

Public API: :func:`load_text` returning a :class:`LoadedText`, and
:data:`SUPPORTED_FORMATS`. Every failure is a :class:`CorpusError` whose message
names the file. The text is kept verbatim (full-width punctuation and digits stay
as written, no NFKC) because answers quote it; only export artifacts, newline
style, trailing spaces and - for PDF - hard line wraps and spaces the PDF text
layer inserts around digits and latin are normalised away.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from index.errors import CorpusError
from index.reflow import reflow, unwrapped
from index.tables import rebuild_cell_tables

if TYPE_CHECKING:
    from docx.table import Table, _Row
    from docx.text.paragraph import Paragraph

    from index.docx_numbers import ListNumbers

SUPPORTED_FORMATS = ("txt", "md", "docx", "pdf")
#: Limits on what a .docx may unpack to, checked before anything is inflated.
MAX_DOCX_XML_BYTES = 64 * 2**20
MAX_DOCX_BYTES = 256 * 2**20
MAX_DOCX_MEMBERS = 5_000


@dataclass(frozen=True)
class LoadedText:
    """The normalised text of one file, its format (txt/md/docx/pdf), where it came from and,
    for plain text, the encoding it was decoded from (``utf-8``, ``gb18030``, ``big5``…)."""

    text: str
    format: str
    source: str
    encoding: str = ""


def load_text(path: Path) -> LoadedText:
    """Read ``path`` and return its normalised text.

    :raises CorpusError: missing, unsupported, mislabelled, corrupt, encrypted,
        undecodable or empty file.
    """
    path = Path(path)
    try:
        fmt, reader = _select_loader(path.suffix)
    except CorpusError as exc:
        raise CorpusError(f"{path}: {exc}") from None
    data = _read_bytes(path)
    encoding = text_encoding(path, data) if fmt in _PLAIN else ""
    text = _normalise(reader(path, data))
    if fmt in _PLAIN:
        text = unwrapped(text)
    if fmt != "docx":  # a .docx table is read row by row already; text gives one cell per line
        text = rebuild_cell_tables(text)
    if not text.strip():
        raise CorpusError(f"{path} is empty")
    return LoadedText(text=text, format=fmt, source=str(path), encoding=encoding)


def text_encoding(path: Path, data: bytes | None = None) -> str:
    """The encoding a .txt/.md file is read with (what ``policybot docs list`` shows).

    :raises CorpusError: it cannot be decoded.
    """
    return _decode(Path(path), _read_bytes(Path(path)) if data is None else data)[1]


def _select_loader(suffix: str) -> tuple[str, Callable[[Path, bytes], str]]:
    """The format name and loader for a file suffix such as ``".docx"``."""
    fmt = suffix.lower().lstrip(".")
    if fmt not in _LOADERS:
        supported = ", ".join(f".{f}" for f in SUPPORTED_FORMATS)
        raise CorpusError(f"unsupported format {suffix or '(no suffix)'!r}; supported formats: {supported}")
    return fmt, _LOADERS[fmt]


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CorpusError(f"{path} does not exist") from exc
    except IsADirectoryError as exc:
        raise CorpusError(f"{path} is a directory, not a file") from exc
    except OSError as exc:
        raise CorpusError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise CorpusError(f"{path} is empty")
    return data


# -- plain text ---------------------------------------------------------------------------

# BOMs first: UTF-32 before UTF-16 because the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# What charset-normalizer may still propose: Chinese files are otherwise UTF-16 without a
# BOM or Big5. Single-byte code pages decode any bytes and would turn garbage into "text".
_GUESSABLE = ["utf_16_le", "utf_16_be", "big5"]


def _load_plain(path: Path, data: bytes) -> str:
    if data.startswith(b"%PDF") or data.startswith(b"PK\x03\x04"):
        kind = "a PDF" if data.startswith(b"%PDF") else "a zip archive (.docx?)"
        raise CorpusError(f"{path} is really {kind}, not {path.suffix} text")
    return _decode(path, data)[0]


def _load_markdown(path: Path, data: bytes) -> str:
    """Markdown's bold marks are formatting (**一、检查内容**, a bold letterhead): the parser reads
    the words, so a bold heading still opens its section."""
    return _BOLD.sub(r"\1", _load_plain(path, data))


_BOLD = re.compile(r"\*\*(?=\S)([^\n*]+?)(?<=\S)\*\*")


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """The text and the name of the encoding it was decoded with."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding.removesuffix("-sig")
            except UnicodeDecodeError as exc:
                raise CorpusError(f"{path} has a {encoding} BOM but is not valid {encoding}") from exc
    # GB18030 text never contains NUL bytes; UTF-16 without a BOM does, and would decode as GB18030.
    if b"\x00" not in data:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            pass
        else:
            return _gb_or_big5(data, text)
    guessed = _guess(data)
    if guessed is None:
        raise CorpusError(f"{path} cannot be decoded (tried UTF-8, GB18030, UTF-16, Big5)")
    return guessed


def _gb_or_big5(data: bytes, gb_text: str) -> tuple[str, str]:
    """GB18030 decodes almost any Big5 file too, into nonsense: keep whichever reading uses the
    common characters of its own standard (GB2312 level 1, Big5's 常用字) more."""
    try:
        big5_text = data.decode("big5")
    except UnicodeDecodeError:
        return gb_text, "gb18030"
    if _common_share(big5_text, "big5", _BIG5_COMMON) > _common_share(gb_text, "gb2312", _GB2312_COMMON):
        return big5_text, "big5"
    return gb_text, "gb18030"


# Lead-byte ranges of the most common characters: GB2312 level 1 (3,755 characters) and Big5
# 常用字 (5,401, A440-C67E), plus each standard's punctuation rows.
_GB2312_COMMON = ((0xA1, 0xA3), (0xB0, 0xD7))
_BIG5_COMMON = ((0xA1, 0xA3), (0xA4, 0xC6))


def _common_share(text: str, codec: str, leads: tuple[tuple[int, int], ...], sample: int = 20_000) -> float:
    """Share of the first ``sample`` non-ASCII characters that are common in ``codec``."""
    wide = [ch for ch in text[: sample * 4] if ord(ch) > 0x7F][:sample]
    if not wide:
        return 0.0
    common = 0
    for ch in wide:
        try:
            lead = ch.encode(codec)[0]
        except UnicodeEncodeError:
            continue
        common += any(low <= lead <= high for low, high in leads)
    return common / len(wide)


def _guess(data: bytes) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=_GUESSABLE).best()
    if best is None:
        return None
    text = str(best)
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    # charset-normalizer can still pick an encoding for noise; demand mostly printable text.
    return (text, best.encoding.replace("_", "-")) if text and printable >= 0.98 * len(text) else None


# -- docx -------------------------------------------------------------------------------------


def _load_docx(path: Path, data: bytes) -> str:
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise CorpusError(f"{path} is a legacy Word .doc file, not .docx; save it as .docx")
    if not data.startswith(b"PK\x03\x04"):
        raise CorpusError(f"{path} is not a .docx file (not a zip archive)")
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    from index.docx_numbers import ListNumbers

    _check_inflated_sizes(path, data)
    try:
        document = docx.Document(io.BytesIO(data))
        numbers = ListNumbers.of(document)
        blocks = [_docx_block(block, numbers) for block in document.iter_inner_content()]
    except (zipfile.BadZipFile, zlib.error, PackageNotFoundError, KeyError, ValueError, SyntaxError,
            NotImplementedError, OSError, EOFError) as exc:
        # lxml's XMLSyntaxError is a SyntaxError subclass
        raise CorpusError(f"{path} is a corrupt .docx ({exc})") from exc
    return "\n".join(blocks)


def _check_inflated_sizes(path: Path, data: bytes) -> None:
    """Refuse a zip bomb from its central directory, before anything is inflated.

    zipfile never inflates a member past the size the directory declares (a member that
    would is cut there and fails its CRC), so these declared sizes bound the work.

    :raises CorpusError: too many members, or more than :data:`MAX_DOCX_XML_BYTES` of XML or
        :data:`MAX_DOCX_BYTES` in all once unpacked.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, KeyError) as exc:
        raise CorpusError(f"{path} is a corrupt .docx ({exc})") from exc
    if len(members) > MAX_DOCX_MEMBERS:
        raise CorpusError(f"{path} holds {len(members)} files; a .docx has a few dozen (at most {MAX_DOCX_MEMBERS})")
    xml = sum(m.file_size for m in members if m.filename.lower().endswith((".xml", ".rels")))
    total = sum(m.file_size for m in members)
    if xml > MAX_DOCX_XML_BYTES or total > MAX_DOCX_BYTES:
        raise CorpusError(f"{path} unpacks to {xml / 2**20:.0f} MiB of XML ({total / 2**20:.0f} MiB in all), over "
                          f"the limit of {MAX_DOCX_XML_BYTES // 2**20} MiB ({MAX_DOCX_BYTES // 2**20} MiB): "
                          "a damaged file or a zip bomb; save it again from Word")


def _docx_block(block: Paragraph | Table, numbers: ListNumbers) -> str:
    from docx.table import Table

    # Word's automatic list numbers (一、 1.) are not in a paragraph's text; the parser needs them
    return "\n".join(_table_lines(block)) if isinstance(block, Table) else numbers.label(block) + block.text


def _table_lines(table: Table) -> list[str]:
    """One line per row, each cell prefixed with its column header: ``姓名: 张三 | 年龄: 10``."""
    rows = [_row_cells(row) for row in table.rows]
    rows = [cells for cells in rows if any(cells)]
    if len(rows) < 2:
        return [" | ".join(cells) for cells in rows]
    header, body = rows[0], rows[1:]
    lines = []
    for cells in body:
        pairs = [f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=False) if c]
        pairs += [c for c in cells[len(header):] if c]
        lines.append(" | ".join(pairs))
    return lines


def _row_cells(row: _Row) -> list[str]:
    # a merged cell is returned once per grid column it spans; keep it once
    cells: list[str] = []
    seen: set[int] = set()
    for cell in row.cells:
        if id(cell._tc) in seen:
            continue
        seen.add(id(cell._tc))
        cells.append(" ".join(cell.text.split()))
    return cells


# -- pdf --------------------------------------------------------------------------------------

_PAGE_NUMBER = re.compile(
    r"\s*(?:[-—–－]\s*\d{1,4}\s*[-—–－]|\d{1,4}|第\s*\d{1,4}\s*页.{0,8}|\d{1,4}\s*/\s*\d{1,4})\s*"
)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PDF_SPACES = (
    (re.compile(f"(?<=[{_HAN}])[ \t]+(?=[{_HAN}0-9A-Za-z])"), ""),
    (re.compile(f"(?<=[0-9A-Za-z%])[ \t]+(?=[{_HAN}])"), ""),
    (re.compile(r"(?<=\d)[ \t]+(?=%)"), ""),
)


def _load_pdf(path: Path, data: bytes) -> str:
    if b"%PDF" not in data[:1024]:
        raise CorpusError(f"{path} is not a PDF (no %PDF header)")
    text = _pdf_text(_pdf_pages(path, data))
    if not text.strip():
        raise CorpusError(f"{path} has no text layer (a scanned PDF?); run OCR on it first")
    return text


def _pdf_text(pages: list[str]) -> str:
    """Join extracted pages into paragraphs and drop the spaces the text layer puts around digits."""
    text = reflow([line for page in pages for line in _strip_page_number(page.split("\n"))])
    for pattern, replacement in _PDF_SPACES:
        text = pattern.sub(replacement, text)
    return text


def _pdf_pages(path: Path, data: bytes) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        # an owner-password-only PDF opens with the empty user password, as in any viewer
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorpusError(f"{path} is password-protected")
        return [page.extract_text() or "" for page in reader.pages]
    except CorpusError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        # pypdf reports damaged files through many exception types
        raise CorpusError(f"{path} is a corrupt PDF ({exc})") from exc


def _strip_page_number(lines: list[str]) -> list[str]:
    """Drop a running page number printed as a page's first or last line."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if lines and _PAGE_NUMBER.fullmatch(lines[-1]):
        lines = lines[:-1]
    if lines and _PAGE_NUMBER.fullmatch(lines[0]):
        lines = lines[1:]
    return lines


# -- all formats --------------------------------------------------------------------------------

_ARTIFACTS = re.compile(r"\[bookmark: [^\]\n]{0,80}\]|<!--[^\n]{0,200}?-->")
_INVISIBLE = {0xFEFF: None, 0x200B: None, 0x00A0: " ", 0x0B: "\n", 0x0C: "\n", 0x2028: "\n", 0x2029: "\n"}


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = _ARTIFACTS.sub("", text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


_PLAIN = ("txt", "md")
_LOADERS: dict[str, Callable[[Path, bytes], str]] = {
    "txt": _load_plain,
    "md": _load_markdown,
    "docx": _load_docx,
    "pdf": _load_pdf,
}
