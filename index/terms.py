"""Which texts of a library contain a term, as ``term in text`` says: the lookup behind the
coverage features (:mod:`index.features`), done once per term rather than per candidate."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

_NONE = np.zeros(0, dtype=np.int64)


class TermIndex:
    """Substring lookups over fixed texts, remembered for the most recent terms: people reuse
    the same words, and a scan per candidate per question was a fifth of a search.

    A new term is looked for only in the texts holding all its characters. Each character's
    texts are a packed bit row, so that is one AND over a few rows of ``len(texts) / 8``
    bytes (sorted postings intersected with ``np.isin`` cost a third of a new question's
    search beside the embedder).
    """

    SIZE = 4096

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = tuple(texts)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        postings: dict[str, list[int]] = {}
        for n, text in enumerate(self._texts):
            for char in set(text):
                postings.setdefault(char, []).append(n)
        self._row = {char: n for n, char in enumerate(postings)}
        self._bits = np.zeros((len(postings), (len(self._texts) + 7) // 8), dtype=np.uint8)
        row = np.zeros(len(self._texts), dtype=bool)
        for char, found in postings.items():  # row by row: a whole bool matrix would be 8× the size
            row[found] = True
            self._bits[self._row[char]] = np.packbits(row)
            row[found] = False

    def containing(self, term: str) -> np.ndarray:
        """Sorted indices of the texts that contain ``term``."""
        with self._lock:
            found = self._cache.get(term)
            if found is not None:
                self._cache.move_to_end(term)
                return found
        found = self._scan(term)
        with self._lock:
            self._cache[term] = found
            while len(self._cache) > self.SIZE:
                self._cache.popitem(last=False)
        return found

    def has(self, term: str) -> np.ndarray:
        """Per text: whether it contains ``term``."""
        mask = np.zeros(len(self._texts), dtype=bool)
        mask[self.containing(term)] = True
        return mask

    def _scan(self, term: str) -> np.ndarray:
        chars = set(term)
        if not chars:  # the empty term is in every text
            return np.arange(len(self._texts), dtype=np.int64)
        rows = [self._row.get(char) for char in chars]
        if None in rows:
            return _NONE
        both = np.bitwise_and.reduce(self._bits[rows], axis=0)
        maybe = np.flatnonzero(np.unpackbits(both, count=len(self._texts)))
        if len(chars) == len(term) == 1:
            return maybe
        return np.array([n for n in maybe.tolist() if term in self._texts[n]], dtype=np.int64)
