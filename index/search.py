"""Hybrid search: dense (FAISS), jieba-BM25 and character-bigram candidates, ranked per work
item by a fitted model, with a calibrated confidence so the caller can abstain.

1. *Candidates*: the top chunks by FAISS inner product, by BM25 of the question's own
   terms and of its expansion terms, and the top items by bigram BM25, name a few
   hundred work items at most.
2. *Features*: for those items only, the evidence of :mod:`index.features` (cosines of
   the item and its best sentence, lexical scores, coverage, document names, numbers,
   years), scored by the weights :mod:`index.fit` learned (:mod:`index.rank`).
3. *Confidence*: a second fitted logistic gives the probability that the library
   answers the question; below the fitted threshold the searcher abstains. A question asking for a
   fact (a price, a date, a phone number …) that no found item states is declined too.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.chunks import item_layout, warn_if_built_otherwise
from index.domain import Document, Hit, WorkItem
from index.embed import DEFAULT_EMBEDDER
from index.evaluate import RankedItem
from index.facts import FactType, expected_facts, states_fact
from index.features import (
    FEATURES,
    Library,
    Query,
    bigrams,
    features,
    idf_function,
    named_year,
    other_year,
    range_indices,
    years_on,
)
from index.quotes import best_sentences
from index.rank import UNSTATED_FACT_CONFIDENCE, Ranker, fact_first, load_ranker, rank_order, to_front
from index.refs import REF, library_refs
from index.store import StoredIndex, load_index


@dataclass(frozen=True)
class SearchResult:
    """Hits best first; ``abstained`` means the documents do not answer (hits are then suggestions);
    ``unstated`` names the facts asked (``price``, ``date`` …: :mod:`index.facts`) that the top
    item does not give, when that is why."""

    question: str
    hits: tuple[Hit, ...]
    confidence: float
    abstained: bool
    unstated: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchSettings:
    """How many candidates each retriever contributes before the fitted ranker scores them."""

    dense_candidates: int = 200
    lexical_candidates: int = 200
    bigram_candidates: int = 100
    max_sentences: int = 3  # 2 quoted: span@3 0.790 held out, 3: 0.815, no other figure moved


@dataclass(frozen=True)
class Ranked:
    """One question's candidate items, best first, with what ranked them."""

    query: Query
    items: np.ndarray
    features: np.ndarray
    scores: np.ndarray

    def reordered(self, order: np.ndarray) -> Ranked:
        return Ranked(self.query, self.items[order], self.features[order], self.scores[order])


class Searcher:
    """Answers questions from one loaded index version; safe to share between threads."""

    def __init__(self, stored: StoredIndex, *, embedder, tokenizer, ranker: Ranker | None = None,
                 settings: SearchSettings | None = None, query_cache: int = 4096) -> None:
        self.stored = stored
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.ranker = ranker or load_ranker()
        self.settings = settings or SearchSettings()
        self.version = stored.version
        self.documents = tuple(sorted(stored.documents, key=lambda d: d.year or 0, reverse=True))
        self._item_chunk, self._chunk_item = item_layout(stored.chunks)
        self.library = Library(stored.documents, stored.chunks, self._item_chunk, tokenizer.normalize)
        # every reference, both ways, once per version: hits and lookups are then dictionary reads
        codes = stored.manifest.get("codes")  # absent in versions built before codes were kept
        self._item_of_ref = library_refs(stored.documents, codes if isinstance(codes, dict) else None)
        self._ref_of = {(doc.doc_id, item.locator): ref for ref, (doc, item) in self._item_of_ref.items()}
        self._idf = idf_function(stored.bm25, len(stored.chunks))
        # a plain view of the (memory-mapped) vectors: indexing a np.memmap costs ~1 ms a question
        # in its subclass machinery, the view reads the same pages
        self._vectors = np.asarray(stored.vectors)
        self._exact = stored.manifest.get("faiss") == "flat"
        self._query_vectors = _LRU(query_cache)

    @property
    def abstain_below(self) -> float:
        return self.ranker.threshold

    def search(self, question: str, *, k: int = 3, scope: str | None = None) -> SearchResult:
        """The ``k`` work items that best answer ``question``, with a calibrated confidence;
        ``scope``: search only the document with this id."""
        k = max(1, k)
        ranked = self.rank(question, scope=scope)
        if ranked is None:
            return SearchResult(question, (), 0.0, True)
        confidence = self.ranker.confidence(ranked.features, ranked.scores)
        facts = expected_facts(question)
        unstated = self.unstated_facts(facts, int(ranked.items[0]), ranked)
        if unstated:
            ranked, unstated = self._from_the_titled_document(facts, ranked, unstated)
        stated = not unstated
        if not (self.knows_words(ranked.query) and stated):
            confidence = min(confidence, UNSTATED_FACT_CONFIDENCE)
        if not stated:
            o = fact_first(np.arange(len(ranked.items)),
                           lambda n: self.states_facts(facts, int(ranked.items[n]), ranked))
            ranked = ranked.reordered(o)
        # a lower hit is as sure as the top one, discounted by how much lower the ranker puts it
        sure = confidence * np.exp(np.minimum(0.0, ranked.scores[:k] - ranked.scores[0]))
        hits = tuple(self._hit(ranked, n, float(sure[n])) for n in range(min(k, len(ranked.items))))
        return SearchResult(question, hits, round(confidence, 4), confidence < self.ranker.threshold, unstated)

    def rank(self, question: str, *, scope: str | None = None) -> Ranked | None:
        """Candidate items best first, their feature rows and ranker scores (None: nothing to search)."""
        if not _has_content(question):  # punctuation only: nothing to embed or match
            return None
        query = self._query(question)
        lexical = self._bm25(query.tokens)
        items, feats = self.candidates(query, lexical, scope=scope)
        if len(items) == 0:
            return None
        scores = self.ranker.scores(feats)
        # a question about 2020 is answered from the 2020 plan, not the 2021 one: other years go last
        order = rank_order(scores, other_year(self.library, query, items))
        return Ranked(query, items[order], feats[order], scores[order])

    def candidates(self, query: Query, lexical: np.ndarray, *, scope: str | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The items worth scoring for ``query`` and their feature rows (see :mod:`index.features`)."""
        s = self.settings
        expansion = self._bm25(query.expansion)
        bigram = self.library.bigram_scores(bigrams(query.terms_text))
        # below the HNSW size FAISS compares every vector anyway: one product gives both the dense
        # candidates and every chunk's cosine
        every = self._vectors @ query.vector if self._exact else None
        dense = _best(every, s.dense_candidates) if every is not None else self._dense_candidates(query.vector)
        pools = [dense, _top(lexical, s.lexical_candidates), _top(expansion, s.lexical_candidates // 4)]
        items = np.unique(np.concatenate([self._chunk_item[np.concatenate(pools)],
                                          _top(bigram, s.bigram_candidates)]))
        if scope is not None:
            items = items[self.library.item_doc[items] == self.library.doc_index.get(scope, -1)]
        if len(items) == 0:
            return items, np.zeros((0, len(FEATURES)), dtype=np.float32)
        sims = every if every is not None else self._chunk_sims(query.vector, items)
        feats = features(self.library, query, items, sims=sims, lexical=lexical, bigram=bigram, idf=self._idf)
        return items, feats

    def find_item(self, locator: str, *, doc_id: str | None = None) -> tuple[Document, WorkItem] | None:
        """The item with ``locator`` in ``doc_id`` (default: the newest document), or None."""
        docs = [d for d in self.documents if doc_id in (None, d.doc_id)]
        for doc in docs[:1] if doc_id is None else docs:
            for item in doc.items:
                if item.locator == locator:
                    return doc, item
        return None

    def named_document(self, text: str) -> Document | None:
        """The one document ``text`` names, or None: by its title or short title (义务教育法,
        衡阳学前教育条例 among the city's other documents), else by its place (衡阳) alone."""
        norm = self.tokenizer.normalize(text)
        for named in (self.library.titled_docs(norm), self.library.named_docs(norm) > 0):
            found = np.flatnonzero(named)
            if len(found) == 1:
                return self.stored.documents[int(found[0])]
        return None

    def find_ref(self, ref: str) -> tuple[Document, WorkItem] | None:
        """The item a reference such as ``YW11`` names (see :func:`document_codes`), or None."""
        match = REF.fullmatch(ref.strip().upper())
        return self._item_of_ref.get(f"{match.group(1)}{match.group(2)}") if match else None

    def _query(self, question: str) -> Query:
        norm, tokens, expansion = self.tokenizer.question_terms(question)
        # the lexical evidence reads the question without the document names in it (unless
        # that leaves nothing: 义务教育法 alone still finds its articles by their words)
        rest = self.library.without_names(norm)
        own = self.tokenizer.tokens(rest) if rest != norm else tokens
        if not own:
            rest, own = norm, tokens
        return Query(text=norm, tokens=tuple(own), expansion=tuple(expansion),
                     vector=self._query_vector(norm), year=named_year(question), years_on=years_on(question),
                     unseen=self._unseen(tokens), elsewhere=self.library.asks_elsewhere(norm), terms_text=rest)

    def _unseen(self, tokens: Sequence[str]) -> float:
        terms = set(tokens)
        if not terms:  # nothing but stop-words ("的了吗"): nothing the library could match
            return 1.0
        weights = {t: self._idf(t) for t in terms}
        total = sum(weights.values())
        vocab = self.stored.bm25.vocab_dict
        return sum(w for t, w in weights.items() if t not in vocab) / total if total else 0.0

    def query_vector(self, question: str) -> np.ndarray:
        """The unit embedding of ``question`` as a search sees it (the same cache): for comparing
        questions with each other (the bot's FAQ)."""
        return self._query_vector(self.tokenizer.normalize(question))

    def _query_vector(self, text: str) -> np.ndarray:
        # The embedder is most of a query's cost, and people ask the popular questions again and again.
        vec = self._query_vectors.get(text)
        if vec is None:
            vec = self.embedder.embed_queries([text])[0]
            self._query_vectors.put(text, vec)
        return vec

    def ranked_item(self, item: int, ranked: Ranked) -> RankedItem:
        """``item`` as the evaluation sees it (its text and the sentences an answer would quote)."""
        chunk = self.stored.chunks[self._item_chunk[item][0]]
        return RankedItem(doc_id=chunk.doc_id, number=chunk.item_number, locator=chunk.item_locator,
                          text=chunk.text, shown="\n".join(self._best_sentences(item, ranked)))

    def _from_the_titled_document(self, facts: Sequence[FactType], ranked: Ranked, unstated: tuple[str, ...]
                                  ) -> tuple[Ranked, tuple[str, ...]]:
        """When the question names a document by its title and asks a fact the top item does not
        state, the first of the next candidates from that document that states it answers
        (学前教育条例哪天起施行: 第二条 is nearest to the words, 第八条 本条例自…起施行 answers)."""
        titled = self.library.titled_docs(ranked.query.text)
        if not titled.any():
            return ranked, unstated
        for n in range(1, min(TITLED_LOOKAHEAD, len(ranked.items))):
            item = int(ranked.items[n])
            if titled[self.library.item_doc[item]] and self.states_facts(facts, item, ranked):
                return ranked.reordered(to_front(np.arange(len(ranked.items)), n)), ()
        return ranked, unstated

    def knows_words(self, query: Query) -> bool:
        """False when no word of the question, nor any term it expands to, occurs in the library
        (明天天气怎么样): a near vector alone is no answer. A question with no Chinese in it is
        not judged by the words of Chinese documents: the embedder reads both languages, and
        the abstention model decides."""
        vocab = self.stored.bm25.vocab_dict
        return (query.unseen < 0.999 or any(t in vocab for t in query.expansion)
                or not _CHINESE.search(query.text))

    def states_facts(self, facts: Sequence[FactType], item: int, ranked: Ranked) -> bool:
        """False when the sentences quoted from ``item`` do not give every fact asked (``facts``:
        :func:`index.facts.expected_facts` of the question)."""
        return not self.unstated_facts(facts, item, ranked)

    def unstated_facts(self, facts: Sequence[FactType], item: int, ranked: Ranked) -> tuple[str, ...]:
        """The names of the ``facts`` that the sentences quoted from ``item`` do not give. The
        quoted ones, not the whole item: a long plan item or table holds some figure of nearly every
        kind, and the user sees only what is quoted."""
        if not facts:
            return ()
        shown = self._best_sentences(item, ranked)
        return tuple(fact.name for fact in facts if not any(states_fact(t, fact) for t in shown))

    # -- stages ---------------------------------------------------------------------------

    def _chunk_sims(self, qvec: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cosines of the chunks of ``items`` (zero elsewhere): at 100k+ chunks, a product with
        every vector would cost more than the rest of the search."""
        idx = range_indices(self._item_chunk[items, 0], self._item_chunk[items, 1])
        sims = np.zeros(len(self.stored.chunks), dtype=np.float32)
        sims[idx] = np.asarray(self._vectors[idx]) @ qvec
        return sims

    def _bm25(self, tokens: Sequence[str]) -> np.ndarray:
        n = len(self.stored.chunks)
        known = [t for t in dict.fromkeys(tokens) if t in self.stored.bm25.vocab_dict]
        if not known:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self.stored.bm25.get_scores(known), dtype=np.float32)

    def _dense_candidates(self, qvec: np.ndarray) -> np.ndarray:
        total = self.stored.faiss_index.ntotal
        _, ids = self.stored.faiss_index.search(qvec[None, :].astype(np.float32),
                                                min(self.settings.dense_candidates, total))
        return ids[0][ids[0] >= 0]

    def _hit(self, ranked: Ranked, n: int, confidence: float) -> Hit:
        item = int(ranked.items[n])
        chunk = self.stored.chunks[self._item_chunk[item][0]]
        col = dict(zip(FEATURES, ranked.features[n].tolist(), strict=True))
        return Hit(
            doc_id=chunk.doc_id, doc_title=chunk.doc_title, year=chunk.year, section=chunk.section,
            item_number=chunk.item_number, item_title=chunk.item_title, item_locator=chunk.item_locator,
            sentences=self._best_sentences(item, ranked),
            score=round(float(ranked.scores[n]), 4), confidence=round(confidence, 4),
            lexical=round(col["bm25_item"], 4), dense=round(max(col["cos_item"], col["cos_sent"]), 4),
            item_label=chunk.item_label, text=chunk.text,
            ref=self._ref_of.get((chunk.doc_id, chunk.item_locator), ""),
        )

    def _ref(self, doc: Document, locator: str) -> str:
        return self._ref_of.get((doc.doc_id, locator), "")

    def _best_sentences(self, item: int, ranked: Ranked) -> tuple[str, ...]:
        """The item's sentences to quote (:func:`index.quotes.best_sentences`)."""
        lo, hi = self._item_chunk[item]
        cosines = np.asarray(self._vectors[lo + 1:hi]) @ ranked.query.vector
        return best_sentences(self.stored.chunks[lo:hi], cosines, self.library.stub[lo + 1:hi],
                              limit=self.settings.max_sentences)


def open_searcher(data_dir: Path, *, embedder: str = DEFAULT_EMBEDDER, ranker: Ranker | None = None,
                  query_cache: int = 4096) -> Searcher:
    """Load the published index under ``data_dir`` with the embedder and tokenizer it needs.

    :raises IndexNotFound: nothing has been built yet.
    :raises IndexMismatch: the index was built with another embedder or tokenizer.
    """
    from dataclasses import asdict

    from index.embed import load_embedder
    from index.tokenize import default_tokenizer

    _one_blas_thread()
    model = load_embedder(embedder)
    tokenizer = default_tokenizer()
    stored = load_index(Path(data_dir), embedder_name=model.name, tokenizer_info=asdict(tokenizer.info))
    warn_if_built_otherwise(stored.manifest)
    return Searcher(stored, embedder=model, tokenizer=tokenizer, ranker=ranker, query_cache=query_cache)


def _one_blas_thread() -> None:
    """Keep numpy's BLAS and FAISS to one thread in a serving process.

    A query's matrix products are small (a few thousand rows), while idle BLAS and OpenMP
    threads spin after each call and take the cores from the embedder's own threads: measured
    on the 7-document library, search p50 69 ms with BLAS on 2 threads, 30 ms on one.
    """
    import faiss
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    faiss.omp_set_num_threads(1)


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


# How far down a question that names a document by its title looks for that document's item
# stating the fact asked (any document's, or a place as the name, answered unanswerable questions)
TITLED_LOOKAHEAD = 5
_CONTENT = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _has_content(text: str) -> bool:
    return bool(_CONTENT.search(text))


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, whatever their sign (as FAISS returns them)."""
    n = min(n, len(scores))
    return np.argpartition(-scores, n - 1)[:n] if n > 0 else np.array([], dtype=np.int64)


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best positive scores (unordered)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.array([], dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    return top[scores[top] > 0]
