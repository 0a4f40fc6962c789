"""Recurring questions answered from memory: the searcher of one index version wrapped so
that a question already searched (in this worker) costs a dictionary lookup instead of a
search (tokenising, BM25, FAISS and the ranker's features: most of a message's CPU).

Questions are normalised first (:func:`question_key`), so that near-identical ones share an
entry and get the same result: full/half width, traditional/simplified characters, case,
punctuation and spacing are folded. The key only decides which questions share an entry: the
question is searched as asked (the searcher normalises it as it always does), so the server
ranks exactly what `policybot ask`, `eval` and `fit` rank; spellings that share a key differ in
width, script, case or punctuation only, which the searcher's own normalisation mostly folds.
A new index version gets a new wrapper (:class:`bot.searchers.SearcherProvider` makes one per
loaded searcher), so nothing stale is ever served.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.search import Searcher, SearchResult

MAX_ENTRIES = 4096
# Punctuation inside a number means something (3.5, 12-2, 2020/21, 8:30): it is kept.
_IN_NUMBER = re.compile(r"(?<=\d)([.\-/:])(?=\d)")
_KEEP = {".": "\ue000", "-": "\ue001", "/": "\ue002", ":": "\ue003"}
_RESTORE = {v: k for k, v in _KEEP.items()}
_SEPARATORS = re.compile(r"[^\w%\ue000-\ue003]+")  # punctuation, symbols and spaces
_AROUND_HAN = re.compile(r" ?([\u3400-\u9fff\uf900-\ufaff]) ?")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=MAX_ENTRIES)  # recurring questions: folded once
def question_key(text: str) -> str:
    """``text`` folded so that spellings of one question meet: width (NFKC), traditional → simplified,
    lower case, punctuation and spaces dropped between Chinese characters and reduced to one space
    between latin words; punctuation inside a number is kept."""
    text = _t2s().convert(unicodedata.normalize("NFKC", text)).lower()
    text = _IN_NUMBER.sub(lambda m: _KEEP[m.group(1)], text)
    text = _SEPARATORS.sub(" ", text).replace("_", " ")
    text = _AROUND_HAN.sub(r"\1", f" {text} ")
    return "".join(_RESTORE.get(c, c) for c in " ".join(text.split()))


class CachedSearcher:
    """``searcher`` with :meth:`search` remembered per normalised question (LRU, thread-safe);
    every other attribute is the searcher's own."""

    def __init__(self, searcher: Searcher, *, size: int = MAX_ENTRIES) -> None:
        self.searcher = searcher
        self.size = size
        self._results: OrderedDict[tuple[str, int, str | None], SearchResult] = OrderedDict()
        self._lock = threading.Lock()

    def search(self, question: str, *, k: int = 3, scope: str | None = None) -> SearchResult:
        """The searcher's result for ``question``, computed once per key and shared by its spellings."""
        normal = question_key(question) or question.strip()
        key = (normal, k, scope)
        with self._lock:
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
                return found
        result = self.searcher.search(question, k=k, scope=scope)  # outside the lock: searches run in parallel
        with self._lock:
            self._results[key] = result
            while len(self._results) > self.size:
                self._results.popitem(last=False)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.searcher, name)
