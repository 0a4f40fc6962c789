"""The persisted index: versioned folders published by an atomic pointer switch.

Layout under ``<data_dir>/index/``::

    current                 # text file naming the served version (replaced atomically)
    <version>/manifest.json # embedder, tokenizer, documents, counts, SHA-256 of each file; written last
    <version>/documents.json, chunks.json, vectors.npy, dense.faiss, bm25/
    .tmp-<version>/         # a build in progress; never loaded, removed by the next build
    .build.lock             # flock held while a build runs

Embeddings are cached by content hash in ``<data_dir>/cache/embeddings.sqlite3`` so an
unchanged sentence is never embedded twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.chunks import make_chunks
from index.domain import Chunk, Document, Section, Sentence, WorkItem
from index.embed import DEFAULT_EMBEDDER
from index.embed_cache import EmbeddingCache as EmbeddingCache  # re-exported: scripts/bench.py
from index.embed_cache import Progress, chunk_embed_text, embed_chunks
from index.errors import BuildLocked, CorpusError, IndexMismatch, IndexNotFound
from index.integrity import Damaged, file_checksums, verify_version
from index.loader import SUPPORTED_FORMATS

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
SUPPORTED_SUFFIXES = tuple(f".{f}" for f in SUPPORTED_FORMATS)
HNSW_THRESHOLD = 20_000  # below this many chunks an exact flat index is both faster to build and exact


@dataclass(frozen=True)
class StoredIndex:
    """A loaded, read-only index version."""

    path: Path
    manifest: dict
    documents: tuple[Document, ...]
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray
    faiss_index: object
    bm25: object
    #: Versions skipped because they failed their checks, as (version, problem): the served one
    #: is then not the published one, and /healthz says "degraded".
    damaged: tuple[tuple[str, str], ...] = ()

    @property
    def version(self) -> str:
        return self.manifest["version"]


def index_root(data_dir: Path) -> Path:
    return Path(data_dir) / "index"


def current_version(data_dir: Path) -> str | None:
    """The published version name, or None when nothing was published yet."""
    pointer = index_root(data_dir) / "current"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def list_versions(data_dir: Path) -> list[str]:
    """Complete versions (those with a manifest), oldest first."""
    root = index_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / "manifest.json").is_file())


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, plus the supported files inside named folders (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise CorpusError(f"{path}: no such file or folder")
    if not files:
        supported = " ".join(SUPPORTED_SUFFIXES)
        raise CorpusError(f"no documents found in {', '.join(map(str, paths))} (supported: {supported})")
    return files


def build_index(
    paths: Sequence[Path],
    data_dir: Path,
    *,
    embedder: str = DEFAULT_EMBEDDER,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> str:
    """Parse, tokenize and embed ``paths`` into a new version and publish it.

    ``cache_dir`` holds the embedding cache (default ``<data_dir>/cache``).

    :returns: the new version name.
    :raises CorpusError: a document cannot be read or parsed (nothing is published).
    :raises BuildLocked: another build is running.
    """
    from index.structure import parse_file

    files = expand_paths(paths)
    documents = [parse_file(f) for f in files]
    return build_from_documents(documents, data_dir, embedder=embedder, progress=progress, cache_dir=cache_dir)


def build_from_documents(
    documents: Sequence[Document],
    data_dir: Path,
    *,
    embedder: str = DEFAULT_EMBEDDER,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> str:
    """Index already parsed documents into a new version and publish it atomically."""
    from index.embed import load_embedder
    from index.tokenize import default_tokenizer

    _check_documents(documents)
    report = progress or (lambda stage, done, total: None)
    root = index_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    with build_lock(data_dir):
        _remove_leftovers(root)
        model = load_embedder(embedder)
        tokenizer = default_tokenizer()
        chunks = [c for doc in documents for c in make_chunks(doc)]
        version = _new_version_name()
        tmp = root / f".tmp-{version}"
        tmp.mkdir()
        vectors = embed_chunks(chunks, model, cache_dir or Path(data_dir) / "cache", report)
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        _write_faiss(tmp / "dense.faiss", vectors)
        report("bm25", 0, 1)
        _write_bm25(tmp / "bm25", [tokenizer.tokens(chunk_embed_text(c)) for c in chunks])
        report("bm25", 1, 1)
        _write_json(tmp / "documents.json", [asdict(d) for d in documents])
        _write_json(tmp / "chunks.json", [asdict(c) for c in chunks])
        manifest = {**_manifest(version, documents, chunks, model, tokenizer), "files": file_checksums(tmp)}
        _write_json(tmp / "manifest.json", manifest)  # last: a folder without it is never loaded
        os.replace(tmp, root / version)
        publish(data_dir, version)
    return version


def publish(data_dir: Path, version: str) -> None:
    """Point ``current`` at ``version`` atomically (write a temp file, then rename over)."""
    root = index_root(data_dir)
    if not (root / version / "manifest.json").is_file():
        raise IndexNotFound(f"version {version!r} does not exist in {root}")
    tmp = root / f".current-{uuid.uuid4().hex}"
    tmp.write_text(version + "\n", encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, root / "current")


def rollback(data_dir: Path, version: str | None = None) -> str:
    """Serve ``version``, or the version published before the current one; returns it.

    Refused while a build runs: the build would publish over the rollback a moment later.

    :raises IndexNotFound: there is no such version, or nothing older to go back to.
    :raises BuildLocked: an index build is running.
    """
    versions = list_versions(data_dir)
    if version is None:
        served = current_version(data_dir)
        older = [v for v in versions if served is None or v < served]
        if not older:
            raise IndexNotFound("no older index version to roll back to; `policybot index versions` lists them")
        version = older[-1]
    try:
        with build_lock(data_dir):
            publish(data_dir, version)
    except BuildLocked:
        raise BuildLocked("an index build is running and would replace the rolled-back version when it "
                          "publishes; roll back after it has finished") from None
    return version


def load_index(data_dir: Path, *, embedder_name: str, tokenizer_info: dict | None = None,
               version: str | None = None) -> StoredIndex:
    """Load ``version``, or the published version, read-only, after checking its files.

    When the published version fails its checks (a file missing, truncated, edited or
    swapped; ``current`` naming a missing version), the newest intact version before it
    is loaded instead (else the newest intact one), with one log line, and the skipped
    versions are listed in :attr:`StoredIndex.damaged`. A named ``version`` is never
    replaced.

    :raises IndexNotFound: nothing published, or no version is intact.
    :raises IndexMismatch: built by another embedder or tokenizer than the query side uses.
    """
    root = index_root(data_dir)
    if version is not None:
        return _load_checked(root, version, embedder_name, tokenizer_info)
    published, kept = current_version(data_dir), list_versions(data_dir)
    if published is None and not kept:
        raise IndexNotFound(f"no index in {root}; run `policybot index build` first")
    damaged: list[tuple[str, str]] = [] if published else [("current", "no version is published")]
    for candidate in fallback_order(published, kept):
        try:
            stored = _load_checked(root, candidate, embedder_name, tokenizer_info)
        except IndexMismatch:
            if candidate == published:
                raise  # the configuration is wrong, not the files: say so rather than serve an old version
            damaged.append((candidate, "built with another embedder or tokenizer"))
        except Damaged as exc:
            damaged.append((candidate, str(exc)))
        else:
            if damaged:
                log.error("index version %s is damaged (%s); serving %s instead", damaged[0][0], damaged[0][1],
                          candidate)
            return replace(stored, damaged=tuple(damaged))
    problems = "; ".join(f"{v}: {p}" for v, p in damaged)
    raise IndexNotFound(f"no intact index version in {root} ({problems}); run `policybot index build`")


def fallback_order(published: str | None, kept: Sequence[str]) -> list[str]:
    """The published version, then older ones newest first, then newer ones: the order in which
    versions are tried when the published one is damaged."""
    kept = [v for v in kept if v != published]
    older = [v for v in reversed(kept) if published is None or v < published]
    newer = [v for v in kept if published is not None and v > published]
    return ([published] if published else []) + older + newer


def _load_checked(root: Path, version: str, embedder_name: str, tokenizer_info: dict | None) -> StoredIndex:
    """Verify and load one version.

    :raises Damaged: it fails its checks, or its files cannot be loaded.
    """
    import bm25s
    import faiss

    path = root / version
    if "/" in version or version.startswith("."):
        raise Damaged("not a version name")
    manifest = verify_version(path)
    _check_compatible(manifest, embedder_name, tokenizer_info)
    try:
        documents = tuple(document_from_dict(d) for d in _read_json(path / "documents.json"))
        chunks = tuple(Chunk(**c) for c in _read_json(path / "chunks.json"))
        # Vectors are memory-mapped: only the rows of candidate items are ever touched per query.
        vectors = np.load(path / "vectors.npy", mmap_mode="r", allow_pickle=False)
        dense = faiss.read_index(str(path / "dense.faiss"))
        lexical = bm25s.BM25.load(str(path / "bm25"), show_progress=False, mmap=False)
    except Exception as exc:  # a version built before checksums, or damaged in a way they missed
        raise Damaged(f"cannot be loaded ({type(exc).__name__})") from exc
    if len(vectors) != len(chunks) or dense.ntotal != len(chunks):
        raise Damaged(f"{len(chunks)} chunks but {len(vectors)} vectors and {dense.ntotal} in dense.faiss")
    return StoredIndex(path, manifest, documents, chunks, vectors, dense, lexical)


@contextmanager
def build_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking file lock for the duration of a build."""
    root = index_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(f"another index build is running on {data_dir}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def document_from_dict(d: dict) -> Document:
    """Rebuild a :class:`Document` from its ``asdict`` form."""
    sections = tuple(
        Section(number=s["number"], title=s["title"], label=s.get("label", ""),
                items=tuple(_item_from_dict(i) for i in s["items"]))
        for s in d["sections"]
    )
    fields = {k: v for k, v in d.items() if k not in ("sections", "preamble")}
    return Document(**fields, preamble=tuple(Sentence(**s) for s in d["preamble"]), sections=sections)


def _item_from_dict(d: dict) -> WorkItem:
    fields = {k: v for k, v in d.items() if k != "sentences"}
    return WorkItem(**fields, sentences=tuple(Sentence(**s) for s in d["sentences"]))


def require_items(doc: Document, name: str) -> None:
    """Refuse a document with nothing to cite (a letter, a story): ``name`` is how the user knows it."""
    if not doc.items:
        raise CorpusError(f"{name}: no sections or numbered items found; is this a policy document?")


def document_sha256(doc: Document) -> str:
    """Hash of a document's text, as recorded in the manifest (compare it to see what is served)."""
    return hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


def _check_documents(documents: Sequence[Document]) -> None:
    if not documents:
        raise CorpusError("nothing to index: no documents given")
    seen: dict[str, str] = {}
    for doc in documents:
        require_items(doc, doc.source or doc.doc_id)
        if doc.doc_id in seen:
            raise CorpusError(f"two documents share the id {doc.doc_id!r}: {seen[doc.doc_id]} and {doc.source}")
        seen[doc.doc_id] = doc.source


def _check_compatible(manifest: dict, embedder_name: str, tokenizer_info: dict | None) -> None:
    try:
        built_with, built_tokenizer = manifest["embedder"]["name"], dict(manifest["tokenizer"])
    except (KeyError, TypeError, ValueError):
        raise Damaged("manifest.json names no embedder or tokenizer") from None
    if built_with != embedder_name:
        raise IndexMismatch(f"the index was built with embedder {built_with!r} but {embedder_name!r} is "
                            "configured; set POLICYBOT_EMBEDDER to match or run `policybot index build`")
    # Synonyms only expand questions, so editing them needs no rebuild; the rest shapes document tokens.
    keys = ("userdict_sha", "stopwords_sha", "version")
    built = {k: built_tokenizer.get(k) for k in keys}
    if tokenizer_info is not None and built != {k: tokenizer_info.get(k) for k in keys}:
        raise IndexMismatch("the index was built with another jieba dictionary or stop-word list; "
                            "run `policybot index build`")


def _manifest(version: str, documents: Sequence[Document], chunks: Sequence[Chunk], model, tokenizer) -> dict:
    return {
        "format": FORMAT_VERSION,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedder": {"name": model.name, "dim": model.dim, "normalized": True},
        "tokenizer": asdict(tokenizer.info),
        "faiss": "hnsw" if len(chunks) >= HNSW_THRESHOLD else "flat",
        "counts": {
            "documents": len(documents),
            "items": sum(len(d.items) for d in documents),
            "chunks": len(chunks),
            "sentences": sum(c.kind == "sentence" for c in chunks),
        },
        "documents": [_document_summary(d) for d in documents],
    }


def _document_summary(doc: Document) -> dict:
    return {
        "doc_id": doc.doc_id, "title": doc.title, "year": doc.year, "source": doc.source,
        "format": doc.format, "sha256": document_sha256(doc), "sections": len(doc.sections),
        "items": len(doc.items), "sentences": sum(len(i.sentences) for i in doc.items),
    }


def _write_faiss(path: Path, vectors: np.ndarray) -> None:
    import faiss

    dim = vectors.shape[1]
    if len(vectors) >= HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    faiss.write_index(index, str(path))


def _write_bm25(path: Path, token_lists: list[list[str]]) -> None:
    import bm25s

    # bm25s' own tokenizer splits on \w\w+ and so keeps whole Chinese clauses as one token;
    # it gets jieba tokens instead. An empty chunk still needs a placeholder to keep ids aligned.
    retriever = bm25s.BM25()
    retriever.index([tokens or [""] for tokens in token_lists], show_progress=False)
    retriever.save(str(path), show_progress=False)


def _remove_leftovers(root: Path) -> None:
    """Delete half-written versions left by a build that was killed."""
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for tmp in root.glob(".current-*"):
        tmp.unlink(missing_ok=True)


def _new_version_name() -> str:
    # Names sort in build order (rollback and pruning rely on it), down to the microsecond.
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
