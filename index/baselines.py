"""The plain rankers every figure of the product is printed beside.

- ``bm25``: jieba-BM25 (bm25s) over whole items, the question's own terms, no expansion.
- ``dense``: the embedder alone, an item scored by its best chunk: the item's whole text or
  one sentence. The index holds no vector of an item's text (the product averages its
  sentences'), so the baseline embeds every item itself, once, through the build's cache.

Neither abstains. Both rank every item of the loaded index, so they are the honest
"what one part alone would do" for the same library and the same questions.
"""

from __future__ import annotations

import numpy as np

from index.build import default_cache_dir, embed_texts
from index.evaluate import Outcome, RankedItem

BASELINES = ("bm25", "dense")


class Baselines:
    """Plain rankers over a :class:`index.search.Searcher`'s loaded index."""

    def __init__(self, searcher) -> None:
        import bm25s

        self.searcher = searcher
        chunks = searcher.stored.chunks
        self._items = [chunks[lo] for lo, _ in searcher._item_chunk]
        tokens = [searcher.tokenizer.tokens(f"{c.item_title}\n{c.text}") for c in self._items]
        self._bm25 = bm25s.BM25()
        self._bm25.index([t or [""] for t in tokens], show_progress=False)
        self._vectors = np.array(searcher.stored.vectors)
        starts = searcher._item_chunk[:, 0]
        self._vectors[starts] = embed_texts([c.text for c in self._items], searcher.embedder,
                                            default_cache_dir(searcher.stored.data_dir))

    def outcome(self, name: str, question: str, k: int = 10, scope: str | None = None) -> Outcome:
        """The top ``k`` items; each shows as many of its best sentences by the same ranker as the
        product quotes at most, so span@3 compares like with like."""
        if name == "bm25":
            per_chunk = self._chunk_bm25(question)
            scores = self._bm25_scores(question)
        else:
            per_chunk = self._chunk_sims(question)
            scores = np.maximum.reduceat(per_chunk, self.searcher._item_chunk[:, 0]).astype(np.float32)
        if scope is not None:
            scores = np.where([c.doc_id == scope for c in self._items], scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:k]
        items = tuple(self._ranked(int(i), per_chunk) for i in order if scores[i] > (0 if name == "bm25" else -2))
        return Outcome(items=items, abstained=False)

    def _ranked(self, item: int, per_chunk: np.ndarray) -> RankedItem:
        c = self._items[item]
        lo, hi = self.searcher._item_chunk[item]
        chunks = self.searcher.stored.chunks
        most = self.searcher.settings.max_sentences
        best = sorted(np.argsort(-per_chunk[lo + 1:hi], kind="stable")[:most]) if hi - lo > 1 else []
        shown = "\n".join(chunks[lo + 1 + i].text for i in best) or c.text
        return RankedItem(doc_id=c.doc_id, number=c.item_number, locator=c.item_locator, text=c.text, shown=shown)

    def _chunk_bm25(self, question: str) -> np.ndarray:
        return self.searcher._bm25(self.searcher.tokenizer.tokens(question))

    def _chunk_sims(self, question: str) -> np.ndarray:
        s = self.searcher
        return self._vectors @ s._query_vector(s.tokenizer.normalize(question))

    def _bm25_scores(self, question: str) -> np.ndarray:
        known = [t for t in dict.fromkeys(self.searcher.tokenizer.tokens(question)) if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(len(self._items), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)
