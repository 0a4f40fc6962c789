"""The admin's document library: the originals that the index is built from.

Layout under ``<data_dir>/documents/``::

    <doc_id>/original.<ext>   # the file exactly as uploaded
    <doc_id>/record.json      # title, year, format, counts, sha256, when added, uploaded name
    <doc_id>/parsed.json      # the parsed Document, reused while the original is unchanged
    .archive/<doc_id>-<time>/ # replaced or removed documents: nothing uploaded is ever lost

A document is parsed when it is added, so a bad upload is refused before it touches the
library. :func:`build_library_index` re-parses only documents whose parse is missing or
stale, and the build embeds only sentences whose content hash is new.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from index.build import Progress, build_from_documents, expand_paths, require_items
from index.domain import Document, document_from_dict
from index.embed import DEFAULT_EMBEDDER
from index.errors import CorpusError, RetrievalError
from index.loader import SUPPORTED_FORMATS
from index.sandbox import Parsed
from index.store import prune_versions
from index.structure import PARSER_VERSION

MAX_ID_BYTES = 120


class DocumentNotFound(RetrievalError):
    """No document with that id is in the library."""


@dataclass(frozen=True)
class DocumentRecord:
    """What the library knows of one document (``policybot docs list``)."""

    doc_id: str
    title: str
    year: int | None
    format: str
    sections: int
    items: int
    sentences: int
    sha256: str
    added: str
    filename: str
    encoding: str = ""                 # what a .txt/.md was decoded from (utf-8, gb18030, big5…)
    title_override: str | None = None  # set by the admin: replaces the parsed title in citations
    year_override: int | None = None


def library_root(data_dir: Path) -> Path:
    return Path(data_dir) / "documents"


def add_document(data_dir: Path, path: Path, *, filename: str | None = None, doc_id: str | None = None,
                 title: str | None = None, year: int | None = None) -> DocumentRecord:
    """Parse ``path`` (in a sandbox: it may be any upload) and keep it in the library, replacing
    a document with the same id.

    ``filename`` is the name the admin uploaded (``path`` may be a temporary file); ``title``
    and ``year``, when given, replace what the parser found, in the library and in citations.

    :raises CorpusError: the file cannot be read or has no sections or items; the library is unchanged.
    """
    from index.structure import slug

    path = Path(path)
    name = Path(filename or path.name).name
    suffix = Path(name).suffix.lower()
    if suffix.lstrip(".") not in SUPPORTED_FORMATS:
        raise CorpusError(f"{name}: unsupported format; use one of " + ", ".join(f".{f}" for f in SUPPORTED_FORMATS))
    doc_id = doc_id or short_id(slug(Path(name).stem))
    parsed = _parse(path, doc_id, name) if path.suffix.lower() == suffix else _parse_as(path, suffix, doc_id, name)
    require_items(parsed.document, name)
    return _store(data_dir, path, parsed, name, suffix, title=title, year=year)


def short_id(doc_id: str, max_bytes: int = MAX_ID_BYTES) -> str:
    """``doc_id`` cut to ``max_bytes`` of UTF-8 (never inside a character): it names folders,
    and a file name may hold only 255 bytes, staging and archive suffixes included."""
    return doc_id.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore").strip("-") or "document"


def add_paths(data_dir: Path, paths: Sequence[Path], *, title: str | None = None,
              year: int | None = None) -> list[DocumentRecord]:
    """Add every supported file in ``paths``; all are parsed before any is stored.

    :raises CorpusError: a file cannot be parsed, or ``title``/``year`` is given for more than one file.
    """
    from index.structure import slug

    files = expand_paths(paths)
    if (title is not None or year is not None) and len(files) != 1:
        raise CorpusError(f"a title or year applies to one file, not {len(files)}; add the files one by one")
    parsed = [_parse(f, short_id(slug(f.stem)), str(f)) for f in files]
    for f, one in zip(files, parsed, strict=True):
        require_items(one.document, str(f))
    return [_store(data_dir, f, one, f.name, f.suffix.lower(), title=title, year=year)
            for f, one in zip(files, parsed, strict=True)]


def list_documents(data_dir: Path) -> list[DocumentRecord]:
    """Documents in the library, newest year first."""
    root = library_root(data_dir)
    # pathlib's * matches dot-names too: skip .staging-* folders another thread or host is still
    # writing (their record.json may be empty yet) and .archive
    folders = sorted(p.parent for p in root.glob("*/record.json") if not p.parent.name.startswith("."))
    records = [_read_record(f / "record.json") for f in folders] if root.is_dir() else []
    return sorted(records, key=lambda r: (-(r.year or 0), r.doc_id))


def remove_document(data_dir: Path, doc_id: str) -> DocumentRecord:
    """Take a document out of the library (archived, not deleted); re-index to stop serving it."""
    folder = _folder(data_dir, doc_id)
    record = _read_record(folder / "record.json")
    _archive(data_dir, folder)
    return record


def document_files(data_dir: Path, doc_id: str) -> tuple[dict, bytes]:
    """The record (as JSON data) and the original bytes of ``doc_id``: what another host needs to
    hold the same document (:func:`install_document`).

    :raises DocumentNotFound: no such document.
    """
    folder = _folder(data_dir, doc_id)
    record = _read_record(folder / "record.json")
    return asdict(record), (folder / f"original.{record.format}").read_bytes()


def install_document(data_dir: Path, record: dict, original: bytes) -> DocumentRecord:
    """Keep a document added on another host: its ``record`` and ``original`` as
    :func:`document_files` gave them, replacing (archiving) a document with the same id. It is
    parsed when the index is next built, not here.

    :raises CorpusError: the record is malformed, or the original is not the file it describes.
    """
    try:
        stored = DocumentRecord(**record)
    except TypeError as exc:
        raise CorpusError(f"not a library record ({exc})") from None
    try:
        _folder_name(stored.doc_id)
    except DocumentNotFound:
        raise CorpusError(f"not a document id: {stored.doc_id!r}") from None
    if stored.format not in SUPPORTED_FORMATS:
        raise CorpusError(f"{stored.doc_id}: unsupported format {stored.format!r}")
    if hashlib.sha256(original).hexdigest() != stored.sha256:
        raise CorpusError(f"{stored.doc_id}: the original does not match the SHA-256 of its record")
    _place(data_dir, stored, original, None)
    return stored


def load_documents(data_dir: Path) -> list[Document]:
    """Parsed documents of the library (with the admin's titles and years), re-parsing only those
    whose original or the parser changed."""
    docs = []
    for record in list_documents(data_dir):
        folder = library_root(data_dir) / record.doc_id
        parsed = folder / "parsed.json"
        cached = json.loads(parsed.read_text(encoding="utf-8")) if parsed.is_file() else {}
        if cached.get("sha256") == record.sha256 and cached.get("parser") == PARSER_VERSION:
            doc = document_from_dict(cached["document"])
        else:
            doc = _parse(folder / f"original.{record.format}", record.doc_id, record.filename).document
            _write_parsed(folder, doc, record.sha256)
        docs.append(_with_overrides(doc, record))
    return docs


def _with_overrides(doc: Document, record: DocumentRecord) -> Document:
    """``doc`` with the title and year the admin set, so that citations use them."""
    title = record.title_override if record.title_override else doc.title
    year = record.year_override if record.year_override is not None else doc.year
    return doc if (title, year) == (doc.title, doc.year) else replace(doc, title=title, year=year)


def build_library_index(data_dir: Path, *, embedder: str = DEFAULT_EMBEDDER, progress: Progress | None = None,
                        keep: int = 5, cache_dir: Path | None = None) -> str:
    """Index every library document into a new published version; keep the newest ``keep`` versions."""
    docs = load_documents(data_dir)
    if not docs:
        raise CorpusError("the library is empty; add documents with `policybot docs add FILE`")
    version = build_from_documents(docs, data_dir, embedder=embedder, progress=progress, cache_dir=cache_dir)
    prune_versions(data_dir, keep=keep)
    return version


def _parse(path: Path, doc_id: str, name: str) -> Parsed:
    from index.sandbox import parse_isolated

    return parse_isolated(path, doc_id=doc_id, name=name)


def _parse_as(path: Path, suffix: str, doc_id: str, name: str) -> Parsed:
    """Parse an upload saved under a temporary name by the suffix of the name it was uploaded as."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        named = Path(tmp) / f"upload{suffix}"
        shutil.copyfile(path, named)
        return _parse(named, doc_id, name)


def _store(data_dir: Path, source: Path, parsed: Parsed, filename: str, suffix: str, *,
           title: str | None = None, year: int | None = None) -> DocumentRecord:
    doc = parsed.document
    original = source.read_bytes()
    record = DocumentRecord(
        doc_id=doc.doc_id, title=title or doc.title, year=year if year is not None else doc.year,
        format=suffix.lstrip("."), sections=len(doc.sections), items=len(doc.items),
        sentences=sum(len(i.sentences) for i in doc.items), sha256=hashlib.sha256(original).hexdigest(),
        added=datetime.now(UTC).isoformat(timespec="seconds"), filename=filename, encoding=parsed.encoding,
        title_override=title or None, year_override=year,
    )
    _place(data_dir, record, original, doc)
    return record


def _place(data_dir: Path, record: DocumentRecord, original: bytes, doc: Document | None) -> None:
    """Write the document's folder aside, then rename it into place (archiving the one it replaces),
    so a reader never sees half a document."""
    root = library_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{record.doc_id}-{time.time_ns()}"
    staging.mkdir()
    (staging / f"original.{record.format}").write_bytes(original)
    (staging / "record.json").write_text(json.dumps(asdict(record), ensure_ascii=False, indent=1), "utf-8")
    if doc is not None:
        _write_parsed(staging, doc, record.sha256)
    target = root / record.doc_id
    if target.exists():
        _archive(data_dir, target)
    staging.rename(target)


def _folder_name(doc_id: str) -> None:
    if not doc_id or "/" in doc_id or doc_id.startswith(".") or len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        raise DocumentNotFound(f"no document {doc_id!r}; `policybot docs list` shows the ids")


def _folder(data_dir: Path, doc_id: str) -> Path:
    """The folder of ``doc_id``.

    :raises DocumentNotFound: the id is not a document's (or not an id at all).
    """
    _folder_name(doc_id)
    folder = library_root(data_dir) / doc_id
    if not (folder / "record.json").is_file():
        raise DocumentNotFound(f"no document {doc_id!r}; `policybot docs list` shows the ids")
    return folder


def _archive(data_dir: Path, folder: Path) -> None:
    archive = library_root(data_dir) / ".archive"
    archive.mkdir(exist_ok=True)
    folder.rename(archive / f"{folder.name}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6}")


def _write_parsed(folder: Path, doc: Document, sha: str) -> None:
    data = {"sha256": sha, "parser": PARSER_VERSION, "document": asdict(doc)}
    # Other workers may read it at the same moment: write aside, then rename over.
    tmp = folder / f".parsed-{time.time_ns()}.json"
    tmp.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    os.replace(tmp, folder / "parsed.json")


def _read_record(path: Path) -> DocumentRecord:
    return DocumentRecord(**json.loads(path.read_text(encoding="utf-8")))
