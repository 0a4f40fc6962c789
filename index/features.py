"""Evidence that a work item answers a question, as numbers a fitted ranker weighs.

:class:`Library` is built once per loaded index version; :meth:`Library.features` gives,
for the candidate items of one question, one row per item and one column per name in
:data:`FEATURES`. Every column means the same thing from one question to the next
(absolute cosines, scores relative to the best candidate, shares of the question's
terms), so one set of weights fits every library. Nothing here is tuned by hand:
:mod:`index.fit` learns the weights from labelled questions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.domain import Chunk, Document
from index.places import Place, elsewhere, places_in
from index.sentences import is_stub
from index.terms import TermIndex
from index.titles import document_kind

FEATURES: tuple[str, ...] = (
    "cos_item", "cos_sent", "cos_item_z", "cos_sent_z", "dense_rr",
    "bm25_item", "bm25_sent", "bigram", "bigram_log", "lex_rr",
    "coverage", "title_coverage", "bigram_coverage", "numbers",
    "doc_named", "other_doc_named", "elsewhere", "log_length", "unseen",
)
# What the ranker weighs: every column but the raw cosines, whose scale belongs to one embedder
# (e5's cosines crowd into 0.8–0.9, MiniLM's spread over 0.1–0.6). Within a question the dense
# evidence enters as z-scores over the candidates and as ranks, which mean the same for any
# embedder; the raw cosines stay for the abstention model (:data:`index.rank.ABSTAIN_INPUTS`).
RANK_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f not in ("cos_item", "cos_sent"))

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+|[a-z]+|\d+(?:\.\d+)?%?")
_QUANTITY = re.compile(r"\d+(?:\.\d+)?(?:%|[\u4e00-\u9fff])?")
_LAW_TITLE = re.compile(r"(?:法|条例|规定|办法|细则|章程|规程|守则)$")
_NATIONAL = "中华人民共和国"
_PLACE_PREFIX = 8  # characters of higher-level places before a local title's own place


def bigrams(norm: str) -> list[str]:
    """Character bigrams of Han runs (single characters of one-character runs), latin words, numbers.

    Robust to segmentation: 义务教育 and 义务 教育 share every bigram.
    """
    grams: list[str] = []
    for run in _HAN_RUN.findall(norm):
        if run[0] >= "\u4e00" and len(run) > 1:
            grams += [run[i:i + 2] for i in range(len(run) - 1)]
        else:
            grams.append(run)
    return grams


@dataclass(frozen=True)
class Query:
    """A question as the features see it."""

    text: str              # normalised (width, script, numerals)
    tokens: tuple[str, ...]  # jieba terms of the question itself
    expansion: tuple[str, ...]  # terms that synonyms, pinyin and typos add, never mixed into ``tokens``
    vector: np.ndarray
    year: int | None       # a year the question names (2020年), if any
    unseen: float = 0.0    # IDF-weighted share of the question's terms that no document contains
    elsewhere: bool = False  # it names places, none of them one a local document is about
    years_on: int | None = None  # 今年 0, 去年 -1, 明年 1: from the newest yearly document of each kind
    terms_text: str = ""   # ``text`` without the document names in it: what the lexical evidence reads


def doc_aliases(doc: Document) -> tuple[str, ...]:
    """Names by which a question can point at ``doc``: its title, the title without 中华人民共和国,
    the place a local document is about (衡阳市 → 衡阳市, 衡阳), and a local regulation's title
    without its place (衡阳市学前教育条例 → 学前教育条例), as people cite it at home."""
    title = re.sub(r"[《》“”\"\s]", "", doc.title)
    names = {title}
    if title.startswith(_NATIONAL) and len(title) > len(_NATIONAL) + 1:
        names.add(title[len(_NATIONAL):])
    for place in _title_place(title):
        names |= {place.name, place.short}
        at = title.find(place.name)  # after the places the title opens with (浙江省绍兴市…)
        rest = title[at + len(place.name):] if 0 <= at <= _PLACE_PREFIX else ""
        if is_law(doc) and len(rest) >= 4:
            names.add(rest)
    return tuple(sorted((n for n in names if len(n) >= 2), key=len, reverse=True))


def _name_pattern(names: Sequence[str]) -> re.Pattern | None:
    """One document's names, longest first; a name ending in 法 not read inside 法律, 法规 …
    (教师法律责任 does not name 教师法)."""
    alternatives = [re.escape(n) + ("(?![律规人院官定])" if n.endswith("法") else "") for n in names]
    return re.compile("|".join(alternatives)) if alternatives else None


def _title_place(title: str) -> tuple[Place, ...]:
    """The place a local document is about: the narrowest its title names (浙江省绍兴市… → 绍兴市)."""
    found = () if title.lstrip("《").startswith(_NATIONAL) else places_in(title)
    return (max(found, key=lambda p: p.level),) if found else ()


def is_law(doc: Document) -> bool:
    """Laws and regulations stay in force whatever their year; plans and notices are dated."""
    return bool(_LAW_TITLE.search(re.sub(r"[（(][^）)]*[）)]$", "", doc.title.strip("《》 "))))


def is_dated(doc: Document) -> bool:
    """A yearly plan or notice: its title names its year (a five-year plan or a law does not)."""
    return bool(doc.year) and str(doc.year) in doc.title and not is_law(doc)


class Library:
    """Per-version lookup tables the features need, built once when an index is loaded."""

    def __init__(self, documents: Sequence[Document], chunks: Sequence[Chunk], item_chunk: np.ndarray,
                 normalize) -> None:
        import bm25s

        self.item_chunk = item_chunk
        self.doc_index = by_id = {d.doc_id: n for n, d in enumerate(documents)}
        first = [chunks[lo] for lo, _ in item_chunk]
        self.item_doc = np.array([by_id.get(c.doc_id, -1) for c in first], dtype=np.int64)
        self.aliases = [tuple(normalize(a) for a in doc_aliases(d)) for d in documents]
        self._names = [_name_pattern(names) for names in self.aliases]
        self._any_name = _name_pattern(sorted({a for names in self.aliases for a in names}, key=len, reverse=True))
        # the places local documents are about (衡阳市教育局… → 衡阳市); a national law has none
        places = [_title_place(d.title) for d in documents]
        place_names = [{n for p in found for n in (p.name, p.short)} for found in places]
        self._titles = [_name_pattern([a for a in names if a not in own])
                        for names, own in zip(self.aliases, place_names, strict=True)]
        self.doc_dated = np.array([is_dated(d) for d in documents], dtype=bool)
        self.doc_year = np.array([d.year or 0 for d in documents], dtype=np.int64)
        self.doc_kind = np.array([document_kind(d.title) for d in documents], dtype=object)
        self.covered: tuple[Place, ...] = tuple(p for found in places for p in found)
        self.doc_local = np.array([bool(found) for found in places], dtype=bool)
        self.item_text = [normalize(f"{c.item_title}\n{c.text}") for c in first]
        self.title_text = [normalize(c.item_title) for c in first]
        self.item_terms, self.title_terms = TermIndex(self.item_text), TermIndex(self.title_text)
        self.log_length = np.log1p(np.array([len(c.text) for c in first], dtype=np.float32))
        self.stub = np.array([c.kind == "sentence" and is_stub(c.text) for c in chunks], dtype=bool)
        # a table row (index.tables) is quoted but is no evidence for the best sentence: its header
        # names and figures are near almost any question to the embedder (README "Measured")
        self.silent = self.stub | np.array([c.kind == "sentence" and " | " in c.text for c in chunks], dtype=bool)
        grams = [bigrams(t) for t in self.item_text]
        self.bigram = bm25s.BM25()
        self.bigram.index([g or [""] for g in grams], show_progress=False)

    def bigram_scores(self, grams: Sequence[str]) -> np.ndarray:
        known = [g for g in dict.fromkeys(grams) if g in self.bigram.vocab_dict]
        if not known:
            return np.zeros(len(self.item_chunk), dtype=np.float32)
        return np.asarray(self.bigram.get_scores(known), dtype=np.float32)

    def gram_counts(self, grams: Sequence[str]) -> np.ndarray:
        """Per item: how many of the distinct ``grams`` it contains (from the bigram index's
        posting lists, not a set intersection per candidate)."""
        vocab, indptr, indices = self.bigram.vocab_dict, self.bigram.scores["indptr"], self.bigram.scores["indices"]
        ids = [vocab[g] for g in dict.fromkeys(grams) if g in vocab]
        hits = [indices[indptr[t]:indptr[t + 1]] for t in ids]
        if not hits:
            return np.zeros(len(self.item_chunk), dtype=np.float32)
        return np.bincount(np.concatenate(hits), minlength=len(self.item_chunk)).astype(np.float32)

    def asks_elsewhere(self, question: str) -> bool:
        """True when ``question`` is about a place none of the local documents covers."""
        return elsewhere(question, self.covered)

    def named_docs(self, norm_question: str) -> np.ndarray:
        """Per document: 1 when the question names it (its title, short title or place)."""
        return self._searched(self._names, norm_question).astype(np.float32)

    def titled_docs(self, norm_question: str) -> np.ndarray:
        """Per document: whether the question names it by its title (学前教育条例), not only by its place."""
        return self._searched(self._titles, norm_question)

    def _searched(self, patterns: Sequence[re.Pattern | None], norm_question: str) -> np.ndarray:
        """Per document: whether its pattern occurs in the question. Most questions name no
        document: one search of every name decides that, not one search per document."""
        if self._any_name is None or not self._any_name.search(norm_question):
            return np.zeros(len(patterns), dtype=bool)
        return np.array([bool(p and p.search(norm_question)) for p in patterns], dtype=bool)

    def without_names(self, norm_question: str) -> str:
        """``norm_question`` with the document names it holds blanked out, for the lexical evidence:
        a name says which document (``doc_named``), not which of its items. In 义务教育法施行日期
        the name's words are in every article of that law and the one that answers (本法自…起施行)
        had the fewest of them."""
        return self._any_name.sub(" ", norm_question) if self._any_name else norm_question


def features(lib: Library, q: Query, items: np.ndarray, *, sims: np.ndarray, lexical: np.ndarray,
             bigram: np.ndarray, idf) -> np.ndarray:
    """The feature matrix of ``items`` (rows) for question ``q`` (columns: :data:`FEATURES`).

    ``sims`` and ``lexical`` are per chunk (cosine, jieba-BM25), ``bigram`` per item;
    ``idf(term)`` weighs coverage.

    Not here, because leave-one-document-out fits showed them to hurt on documents the fit
    had not seen: BM25 of the synonym expansion (it pulls in whole-document words; it still
    adds candidates), how well an item's document as a whole fits the question, and whether an
    item states the kind of fact asked (an age, a price: :mod:`index.facts`) — it lifted items that
    state *a* price over the ones on topic, so the answer-type rule stopped declining unanswerable
    questions (0.737 → 0.658 of them held out, Recall@1 unchanged).
    """
    n = len(items)
    lo, hi = lib.item_chunk[items, 0], lib.item_chunk[items, 1]
    cos_item = sims[lo]
    cos_sent = _segment_max(sims, lo + 1, hi, default=cos_item, skip=lib.silent)
    bm_item = lexical[lo]
    bm_sent = _segment_max(lexical, lo + 1, hi, default=bm_item)
    big = bigram[items]
    docs = lib.item_doc[items]
    named = lib.named_docs(q.text)
    doc_named = named[docs] if len(named) else np.zeros(n, dtype=np.float32)
    other_named = (named.sum() > 0) & (doc_named == 0)
    best = np.maximum(cos_item, cos_sent)
    cols = {
        "cos_item": cos_item, "cos_sent": cos_sent,
        "cos_item_z": _z(cos_item), "cos_sent_z": _z(cos_sent),
        "dense_rr": _reciprocal_rank(best),
        "bm25_item": _rel(bm_item), "bm25_sent": _rel(bm_sent),
        "bigram": _rel(big), "bigram_log": np.log1p(big),
        "lex_rr": _reciprocal_rank(_rel(bm_item) + _rel(big)),
        "coverage": _coverage(q.tokens, lib.item_terms, items, idf),
        "title_coverage": _coverage(q.tokens, lib.title_terms, items, idf),
        "bigram_coverage": _gram_coverage(bigrams(q.terms_text or q.text), lib, items),
        "numbers": _item_numbers(q.text, lib, items),
        "doc_named": doc_named, "other_doc_named": other_named.astype(np.float32),
        # a local document answers for its own place only; a national law for every place
        "elsewhere": (q.elsewhere & lib.doc_local[docs]).astype(np.float32),
        "log_length": lib.log_length[items],
        # the same for every candidate: how much of the question the library never mentions
        # (火星, 天气); the ranker ignores it, the abstention model does not
        "unseen": np.full(n, q.unseen, dtype=np.float32),
    }
    return np.column_stack([np.asarray(cols[name], dtype=np.float32) for name in FEATURES])


_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
_RELATIVE_YEARS = (
    (re.compile(r"今年|本年度|this year", re.I), 0),
    (re.compile(r"去年|上一年|last year", re.I), -1),
    (re.compile(r"明年|next year", re.I), 1),
)


def named_year(question: str) -> int | None:
    """The year a question names (2020年), if any."""
    match = _YEAR.search(question)
    return int(match.group(1)) if match else None


def years_on(question: str) -> int | None:
    """今年 0, 去年 -1, 明年 1 (None: no year relative to now). Relative to the newest yearly document
    of each kind, not to the calendar: a bot answering from the 2020 plan treats 2020 as this year
    (:func:`other_year`)."""
    return next((offset for pattern, offset in _RELATIVE_YEARS if pattern.search(question)), None)


def other_year(lib: Library, query: Query, items: np.ndarray) -> np.ndarray:
    """Per item: True when it belongs to a yearly document (plan, notice) of another year than the
    one asked, while a yearly document of the same kind (要点, 通知 …) and the asked year exists.
    今年 is the newest year of each kind: a 2021 notice does not make the 2020 plan last year's.
    Laws never count: they stay in force whatever their year. (A rule, not a feature: no labelled
    set holds two yearly plans.)"""
    if query.year is None and query.years_on is None:
        return np.zeros(len(items), dtype=bool)
    late = np.zeros(len(lib.doc_year), dtype=bool)
    for kind in set(lib.doc_kind[lib.doc_dated].tolist()):
        same = lib.doc_dated & (lib.doc_kind == kind)
        year = query.year if query.year is not None else int(lib.doc_year[same].max()) + (query.years_on or 0)
        if np.any(same & (lib.doc_year == year)):
            late |= same & (lib.doc_year != year)
    return late[lib.item_doc[items]]


def _segment_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, default: np.ndarray,
                 skip: np.ndarray | None = None) -> np.ndarray:
    """max(values[lo[i]:hi[i]]) per i leaving out the positions marked in ``skip``; ``default[i]``
    for a range with nothing left."""
    out = np.array(default, dtype=np.float32, copy=True)
    nonempty = hi > lo
    if not nonempty.any():
        return out
    lengths = hi[nonempty] - lo[nonempty]
    idx = range_indices(lo[nonempty], hi[nonempty])
    picked = values[idx] if skip is None else np.where(skip[idx], -np.inf, values[idx])
    best = np.maximum.reduceat(picked, np.cumsum(lengths) - lengths)
    out[nonempty] = np.where(np.isfinite(best), best, out[nonempty])
    return out


def range_indices(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenated indices of the ranges [lo[i], hi[i]), without a Python loop."""
    lengths = hi - lo
    return np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


def _z(values: np.ndarray) -> np.ndarray:
    """Standard scores among one question's candidates (0 when they are all alike)."""
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 1e-6 else np.zeros_like(values, dtype=np.float32)


def _rel(values: np.ndarray) -> np.ndarray:
    """Share of the best candidate's score (0 when nothing scores)."""
    top = float(values.max(initial=0.0))
    return values / top if top > 0 else np.zeros_like(values, dtype=np.float32)


def _reciprocal_rank(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(1, len(values) + 1)
    return 1.0 / ranks


def _coverage(tokens: Sequence[str], terms_index: TermIndex, items: np.ndarray, idf) -> np.ndarray:
    """IDF-weighted share of the question's terms that occur in each item's text."""
    terms = list(dict.fromkeys(tokens))
    weights = np.array([idf(t) for t in terms], dtype=np.float32)
    total = float(weights.sum())
    if not terms or total <= 0:
        return np.zeros(len(items), dtype=np.float32)
    present = np.zeros((len(items), len(terms)), dtype=np.float32)
    for column, term in enumerate(terms):
        present[:, column] = terms_index.has(term)[items]
    return present @ weights / total


def _gram_coverage(grams: Sequence[str], lib: Library, items: np.ndarray) -> np.ndarray:
    wanted = set(grams)
    if not wanted:
        return np.zeros(len(items), dtype=np.float32)
    return lib.gram_counts(list(wanted))[items] / len(wanted)


def _item_numbers(norm_question: str, lib: Library, items: np.ndarray) -> np.ndarray:
    """:func:`_numbers` of the items' texts, read only in the items that contain a quantity asked
    at all (the term postings say which): most candidates hold none of them."""
    wanted = list(dict.fromkeys(_QUANTITY.findall(norm_question)))
    out = np.zeros(len(items), dtype=np.float32)
    if wanted:
        some = np.flatnonzero(np.isin(items, np.concatenate([lib.item_terms.containing(w) for w in wanted])))
        out[some] = _numbers(norm_question, [lib.item_text[i] for i in items[some]])
    return out


def _numbers(norm_question: str, texts: Sequence[str]) -> np.ndarray:
    """Share of the question's quantities (6岁, 30天, 50%) that each text states as such.

    A bare number must not meet a digit inside another number: 15岁 is not in 5月15日.
    """
    wanted = list(dict.fromkeys(_QUANTITY.findall(norm_question)))
    if not wanted:
        return np.zeros(len(texts), dtype=np.float32)
    return np.array([sum(_states(t, w) for w in wanted) / len(wanted) for t in texts], dtype=np.float32)


def _states(text: str, quantity: str) -> bool:
    """``quantity`` occurs in ``text`` not as the tail of a longer number (str.find, not a regex
    compiled per question: each new question brings new quantities)."""
    at = text.find(quantity)
    while at >= 0:
        if at == 0 or not (text[at - 1].isdigit() or text[at - 1] == "."):
            return True
        at = text.find(quantity, at + 1)
    return False


def idf_function(bm25, num_docs: int):
    """IDF of a jieba term over the stored BM25 index (an unseen term is maximally specific)."""
    vocab, indptr = bm25.vocab_dict, bm25.scores["indptr"]

    def idf(token: str) -> float:
        if token not in vocab:
            return math.log(1 + num_docs)
        tid = vocab[token]
        df = int(indptr[tid + 1] - indptr[tid])
        return math.log(1 + (num_docs - df + 0.5) / (df + 0.5))

    return idf
