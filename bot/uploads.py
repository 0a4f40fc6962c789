"""What the admin API does with an uploaded file before the library sees it: a safe file
name (cut by UTF-8 bytes), the optional ``title`` and ``year`` form fields, a private
staging folder under the data dir that is removed afterwards, or, if the worker was
killed mid-upload, by the next worker that starts (:func:`sweep_uploads`), the parse
the admin previews (:func:`parse_upload`, :func:`outline`), and the refusal of a file
the library already holds (:func:`check_not_duplicate`).

Its errors are for the admin page, so they are Chinese.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, Conflict

from index.errors import CorpusError
from index.loader import SUPPORTED_FORMATS

if TYPE_CHECKING:
    from index.domain import Document
    from index.library import DocumentRecord
    from index.sandbox import Parsed

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 200  # UTF-8 bytes: file systems allow 255 per name, and a Chinese character takes 3
MAX_TITLE_CHARS = 200
YEARS = range(1900, 2101)
FOLDER = "uploads"
_UNSAFE_NAME_CHARS = set('<>:"|?*\\/')


def safe_filename(name: str) -> str:
    """``name`` reduced to a safe file name: the last path part, no control or reserved
    characters, no leading dots, at most :data:`MAX_NAME_CHARS` characters and
    :data:`MAX_NAME_BYTES` UTF-8 bytes (cut by bytes, never inside a character); unlike
    werkzeug's ``secure_filename`` it keeps Chinese characters.

    :raise BadRequest: nothing usable is left.
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    kept = "".join(c for c in base if c not in _UNSAFE_NAME_CHARS and not unicodedata.category(c).startswith("C"))
    kept = " ".join(kept.split()).lstrip(". ").rstrip(". ")
    stem, dot, suffix = kept.rpartition(".")
    if not stem:  # no suffix: the whole name is the stem
        stem, dot, suffix = suffix, "", ""
    suffix = clip_utf8(suffix, 16)  # a real one is short; a long one is refused later as unsupported
    stem = stem[: MAX_NAME_CHARS - len(dot + suffix)]
    stem = clip_utf8(stem, MAX_NAME_BYTES - len((dot + suffix).encode("utf-8"))).rstrip(". ")
    if not stem:
        raise BadRequest(f"文件名“{name[:60]}”中没有可用的字符：请给文件改个名字再上传。")
    return f"{stem}{dot}{suffix}"


def clip_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def overrides(form: Mapping[str, str]) -> tuple[str | None, int | None]:
    """The optional ``title`` and ``year`` form fields (blank: not given).

    :raise BadRequest: the title is too long or the year is not a year.
    """
    title = " ".join((form.get("title") or "").split()).strip("《》") or None
    if title is not None and len(title) > MAX_TITLE_CHARS:
        raise BadRequest(f"标题最多 {MAX_TITLE_CHARS} 个字（现在是 {len(title)} 个）。")
    raw = (form.get("year") or "").strip()
    if not raw:
        return title, None
    if not (raw.isascii() and raw.isdigit() and int(raw) in YEARS):
        raise BadRequest(f"年份应是 {YEARS.start} 到 {YEARS.stop - 1} 之间的四位数字（填的是“{raw[:20]}”）。")
    return title, int(raw)


@contextmanager
def received(files: MultiDict, data_dir: Path) -> Iterator[tuple[Path, str]]:
    """The request's ``file`` saved in a staging folder: its path and safe name (the folder is
    removed on the way out). The library's errors name the temporary file; they get the
    admin's own name for it instead.

    :raise BadRequest: no file, a name with nothing usable, or an unsupported format.
    """
    upload = files.get("file")
    if upload is None or not upload.filename:
        raise BadRequest("请选择要上传的文件（表单字段 file）。")
    name = safe_filename(upload.filename)
    check_format(name)
    with staging(data_dir) as tmp:
        path = tmp / name
        upload.save(path)
        try:
            yield path, name
        except CorpusError as exc:
            raise CorpusError(str(exc).replace(str(path), name)) from None


def file_sha256(path: Path) -> str:
    """The content hash the library keeps of each original (``DocumentRecord.sha256``)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_format(name: str) -> None:
    """:raise BadRequest: ``name`` does not end in a format the library reads (said before parsing)."""
    if Path(name).suffix.lower().lstrip(".") not in SUPPORTED_FORMATS:
        shown = "、".join(f".{f}" for f in SUPPORTED_FORMATS)
        raise BadRequest(f"不支持 {name} 的格式：请上传 {shown} 文件"
                         "（旧版 Word 的 .doc、Excel、图片请先另存为 .docx 或 .pdf）。")


def upload_id(name: str) -> str:
    """The library id a file uploaded as ``name`` gets (the same id replaces the document)."""
    from index.library import short_id
    from index.structure import slug

    return short_id(slug(Path(name).stem))


def parse_upload(path: Path, name: str) -> Parsed:
    """Parse the staged upload ``path`` (uploaded as ``name``) as the library will, in its sandbox.

    :raise CorpusError: it cannot be read, or has nothing to cite.
    """
    from index.build import require_items
    from index.sandbox import parse_isolated

    parsed = parse_isolated(path, doc_id=upload_id(name), name=name)
    require_items(parsed.document, name)
    return parsed


def check_not_duplicate(records: Sequence[DocumentRecord], doc_id: str, sha256: str, *,
                        title: str | None, year: int | None) -> None:
    """:raise Conflict: another document of the library has this very content, or the upload
    would change nothing of document ``doc_id`` (same content, same title and year)."""
    for record in records:
        if record.sha256 != sha256:
            continue
        if record.doc_id != doc_id:
            raise Conflict(f"这份文件与文件库中的《{record.title}》（{record.filename}）内容完全相同，无需重复上传。")
        if (record.title_override, record.year_override) == (title, year):
            raise Conflict(f"文件库中已有这份《{record.title}》，内容、标题和年份都相同，没有需要更新的。")


def preview_json(parsed: Parsed, name: str, sha256: str, records: Sequence[DocumentRecord]) -> dict[str, Any]:
    """The ``POST /admin/documents/preview`` body: the parse of upload ``name`` and the library
    document it would replace (same id) or repeat (same content under another id)."""
    doc = parsed.document
    same_id = next((r for r in records if r.doc_id == doc.doc_id), None)
    same_text = next((r for r in records if r.sha256 == sha256 and r.doc_id != doc.doc_id), None)
    return {"id": doc.doc_id, "filename": name, "title": doc.title, "year": doc.year, "format": doc.format,
            "encoding": parsed.encoding, "sections": len(doc.sections), "items": len(doc.items),
            "sentences": sum(len(item.sentences) for item in doc.items), "outline": outline(doc),
            "replaces": same_id and {"id": same_id.doc_id, "title": same_id.title,
                                     "same_content": same_id.sha256 == sha256},
            "duplicate_of": same_text and {"id": same_text.doc_id, "title": same_text.title}}


def outline(doc: Document) -> list[dict[str, Any]]:
    """How ``doc`` was split, as ``policybot parse`` shows it: its sections, their items and sentences."""
    return [{"heading": section.heading,
             "items": [{"label": item.label, "title": item.title, "sentences": [s.text for s in item.sentences]}
                       for item in section.items]}
            for section in doc.sections]


@contextmanager
def staging(data_dir: Path) -> Iterator[Path]:
    """A fresh folder for one upload under ``<data_dir>/uploads/``, removed on the way out."""
    root = Path(data_dir) / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{os.getpid()}-{secrets.token_hex(6)}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_uploads(data_dir: Path, *, older_than_s: float = 3600.0) -> list[str]:
    """Remove the staging folders of uploads whose worker is gone (killed mid-upload), and any
    older than ``older_than_s``; returns their names."""
    root = Path(data_dir) / FOLDER
    if not root.is_dir():
        return []
    removed = []
    now = time.time()
    for folder in root.iterdir():
        pid = folder.name.partition("-")[0]
        try:
            stale = not (pid.isdigit() and _alive(int(pid))) or now - folder.stat().st_mtime > older_than_s
        except FileNotFoundError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    if removed:
        log.info("removed %d upload folder(s) left by stopped workers", len(removed))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
