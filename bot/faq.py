"""Answering from the admins' FAQ: a user question close to a curated pair gets its answer.

Close means both: the embedder the search uses (through the searcher the dialog already
holds) finds the two questions within :data:`MIN_SIMILARITY` (one threshold), and a lexical
check finds the content words of one question all in the other (高中学费 is not 幼儿园学费,
however near their vectors are). The pairs come from :class:`~bot.storage.curation.Curation`;
each process re-reads them when their version changes (one indexed read per question), so
every worker serves an edit at once, without a re-index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bot.storage.curation import Curation, FaqEntry
    from index.search import Searcher

#: Cosine of the two questions' embeddings at or above which a pair may answer. Measured with the
#: default embedder (multilingual-e5-small): rewordings of one question 0.958-0.999 (学费多少钱 /
#: 一学期学费要交多少 0.958), other questions on the same subject 0.90-0.96 (教育局电话 / 教育局地址
#: 0.963: the lexical check is what tells those apart), unrelated questions 0.84-0.89.
MIN_SIMILARITY = 0.95


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    similarity: float


class FaqMatcher:
    """Finds the pair that answers a question; one per process, shared by all threads."""

    def __init__(self, curation: Curation, *, min_similarity: float = MIN_SIMILARITY) -> None:
        self.curation = curation
        self.min_similarity = min_similarity
        self._lock = threading.Lock()
        self._loaded: tuple[str, int] | None = None  # (FAQ version, id of the embedder) of the cache
        self._entries: list[FaqEntry] = []
        self._vectors = np.zeros((0, 0), dtype=np.float32)

    def match(self, question: str, searcher: Searcher) -> FaqMatch | None:
        """The pair closest to ``question`` if it is close enough, else None."""
        entries, vectors = self._current(searcher)
        if not entries:
            return None
        sims = vectors @ searcher.query_vector(question)
        for n in np.argsort(-sims, kind="stable")[:3]:
            if sims[n] < self.min_similarity:
                break
            if same_words(question, entries[n].question, searcher):
                return FaqMatch(entries[n], round(float(sims[n]), 4))
        return None

    def _current(self, searcher: Searcher) -> tuple[list[FaqEntry], np.ndarray]:
        key = (self.curation.faq_version(), id(searcher.embedder))
        with self._lock:
            if key != self._loaded:
                entries = self.curation.faqs()
                texts = [searcher.tokenizer.normalize(e.question) for e in entries]
                self._vectors = searcher.embedder.embed_queries(texts) if texts else np.zeros((0, 0), np.float32)
                self._entries, self._loaded = entries, key
            return self._entries, self._vectors


def same_words(a: str, b: str, searcher: Searcher) -> bool:
    """Whether every content word of one question occurs in the other (after normalising)."""
    from bot.dialog import whole_words

    norm, tokens = searcher.tokenizer.normalize, searcher.tokenizer.tokens
    text_a, text_b = norm(a), norm(b)
    return (all(w in text_b for w in whole_words(tokens(text_a)))
            or all(w in text_a for w in whole_words(tokens(text_b))))
