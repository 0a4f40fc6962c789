"""Tokenization for the lexical (BM25) side of retrieval, and query expansion for both sides.

Documents and questions go through the same :meth:`Tokenizer.normalize` (full-width →
half-width, traditional → simplified, lower-case latin, collapsed spaces) and the same
jieba segmentation with the shipped education-policy user dictionary, so their terms meet
in one vocabulary. Questions additionally get colloquial/English synonyms (``synonyms.tsv``),
pinyin runs (``da ban e`` → 大班额) and homophone typos (资住 → 资助) mapped to document terms.

The resources under ``index/resources/`` are hashed into :class:`TokenizerInfo`, which the
index manifest records: an index must be queried with the tokenizer that built it.

A :class:`Tokenizer` is immutable after ``__init__`` and safe to share between threads.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jieba
import opencc
from pypinyin import lazy_pinyin

from index.numerals import normalize_numerals

RESOURCES = Path(__file__).with_name("resources")
DEFAULT_USERDICT = RESOURCES / "userdict.txt"
DEFAULT_STOPWORDS = RESOURCES / "stopwords.txt"
DEFAULT_SYNONYMS = RESOURCES / "synonyms.tsv"

# Bump when a code change alters the tokens of a document (the index must then be rebuilt).
TOKENIZER_VERSION = "2"  # 2: Chinese numerals normalised (六周岁 ≡ 6岁), quantity tokens

# jieba logs "Building prefix dict ..." to stderr at DEBUG on every dictionary load.
jieba.setLogLevel(logging.WARNING)


def _width_table() -> dict[int, str | None]:
    """Translation table: full-width / half-width forms block → NFKC, ideographic space → space.

    NFKC is applied to this block only: on the whole text it would also turn ①, ㈠, ¹ and
    compatibility ideographs into other characters, which documents quote verbatim.
    """
    table: dict[int, str | None] = {0x3000: " ", 0x200B: None, 0xFEFF: None}
    for cp in range(0xFF01, 0xFFEF):
        folded = unicodedata.normalize("NFKC", chr(cp))
        if folded != chr(cp):
            table[cp] = folded
    return table


_WIDTH = _width_table()
_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_HAN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_RUN = re.compile(r"(?<![a-z0-9])[a-z]+(?: [a-z]+)*(?![a-z0-9])")
_MAX_GRAM_WORD = 10  # sub-grams only for dictionary-sized words; a 100k-char run must stay linear
_MAX_PINYIN_WORDS = 8  # "chao da ban e" style runs: syllables typed as separate words
_MAX_TYPO_WORD = 4  # homophone typos are looked for inside short out-of-vocabulary words


@dataclass(frozen=True)
class TokenizerInfo:
    """Identifies a tokenizer configuration; recorded in the index manifest, checked on open."""

    userdict_sha: str
    stopwords_sha: str
    synonyms_sha: str
    version: str


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _is_han(text: str) -> bool:
    return _HAN.fullmatch(text) is not None


def _has_content(token: str) -> bool:
    """False for tokens made only of punctuation, symbols or whitespace."""
    return any(ch.isalnum() for ch in token)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-empty, non-comment lines with their 1-based numbers.

    "# " starts a comment; a bare "#" line is an empty comment (so "#" itself cannot be listed).
    """
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip().lstrip("\ufeff")
        if stripped and stripped != "#" and not stripped.startswith("# "):
            yield number, stripped


@functools.cache
def _base_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default prefix dictionary, loaded once per process (about 0.6 s)."""
    base = jieba.Tokenizer()
    base.initialize()
    return base.FREQ, base.total


def _new_jieba() -> jieba.Tokenizer:
    """A private jieba tokenizer on a copy of the default dictionary (the global one stays untouched)."""
    freq, total = _base_dictionary()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = dict(freq), total, True
    return tokenizer


@dataclass(frozen=True)
class _Synonym:
    key: str
    pattern: re.Pattern[str]
    targets: tuple[str, ...]


class Tokenizer:
    """Normalizes and segments Chinese/English text for the BM25 index and for questions."""

    def __init__(
        self, *, userdict: Path | None = None, stopwords: Path | None = None, synonyms: Path | None = None
    ) -> None:
        userdict_raw = Path(userdict or DEFAULT_USERDICT).read_bytes()
        stopwords_raw = Path(stopwords or DEFAULT_STOPWORDS).read_bytes()
        synonyms_raw = Path(synonyms or DEFAULT_SYNONYMS).read_bytes()
        self.info = TokenizerInfo(
            userdict_sha=_sha(userdict_raw),
            stopwords_sha=_sha(stopwords_raw),
            synonyms_sha=_sha(synonyms_raw),
            version=f"{TOKENIZER_VERSION}+jieba{jieba.__version__}+opencc{opencc.__version__}",
        )
        self._t2s = opencc.OpenCC("t2s")
        self._jieba = _new_jieba()
        terms = self._load_userdict(userdict_raw.decode("utf-8"))
        self._stopwords = self._load_stopwords(stopwords_raw.decode("utf-8"))
        self._synonyms = self._load_synonyms(synonyms_raw.decode("utf-8"))
        targets = [t for syn in self._synonyms for t in syn.targets]
        self._pinyin = _pinyin_index([*terms, *targets])
        known = {*targets, *(t for group in self._pinyin.values() for t in group)}
        # Expansion terms are segmented like documents, so "校外培训机构" also adds 校外/培训/机构.
        self._term_tokens = {term: tuple(self._tokens(term)) for term in known}

    def __repr__(self) -> str:
        return f"Tokenizer({self.info})"

    # --- resources -------------------------------------------------------------------------

    def _load_userdict(self, text: str) -> list[str]:
        """Add ``word [freq] [tag]`` lines to the private jieba; returns the words."""
        words = []
        for number, line in _lines(text):
            parts = line.split()
            word = self.normalize(parts[0])
            freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            tag = parts[-1] if len(parts) > 1 and not parts[-1].isdigit() else None
            if freq == 0:  # jieba's "force split" mutates module-global state shared by all tokenizers
                raise ValueError(f"userdict line {number}: frequency 0 is not supported: {line!r}")
            self._jieba.add_word(word, freq, tag)
            words.append(word)
        return words

    def _load_stopwords(self, text: str) -> frozenset[str]:
        return frozenset(self.normalize(line) for _, line in _lines(text))

    def _load_synonyms(self, text: str) -> tuple[_Synonym, ...]:
        """Parse ``colloquial<TAB>targets``; longest keys first so they win overlaps."""
        merged: dict[str, list[str]] = {}
        for number, line in _lines(text):
            key, sep, targets = line.partition("\t")
            if not sep or not key.strip() or not targets.strip():
                raise ValueError(f"synonyms line {number}: expected 'phrase<TAB>terms': {line!r}")
            bucket = merged.setdefault(self.normalize(key), [])
            bucket += [t for t in self.normalize(targets).split() if t not in bucket]
        return tuple(
            _Synonym(key, _synonym_pattern(key), tuple(targets))
            for key, targets in sorted(merged.items(), key=lambda kv: -len(kv[0]))
        )

    # --- public API ------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """Full → half width, traditional → simplified, lower-case latin, single spaces, and
        Chinese numerals as digits (六周岁 → 6岁), so that documents and questions meet."""
        text = self._t2s.convert(text.translate(_WIDTH))
        return normalize_numerals(_SPACES.sub(" ", text.lower()).strip())

    def tokens(self, text: str) -> list[str]:
        """Index terms of a document text (also the base of :meth:`query_tokens`)."""
        return self._tokens(self.normalize(text))

    def query_tokens(self, text: str) -> list[str]:
        """Terms of a question: :meth:`tokens` plus the document terms its wording maps to.

        Appended terms are not repeated when already present, so an expansion never
        counts twice in BM25.
        """
        _, own, extra = self.question_terms(text)
        return own + extra

    def expansion_tokens(self, text: str) -> list[str]:
        """Only the terms that synonyms, pinyin and typo repair add to a question (for a feature
        of their own: expansion must not pull the main query towards whole-document words)."""
        return self.question_terms(text)[2]

    def question_terms(self, text: str) -> tuple[str, list[str], list[str]]:
        """``(normalize(text), tokens(text), expansion_tokens(text))`` with one normalisation and
        one segmentation: a search needs all three, and jieba is a fifth of its cost."""
        norm = self.normalize(text)
        words = self._jieba.lcut(norm)
        own = self._tokens(norm, words)
        seen = set(own)
        extra: list[str] = []
        for term in self._expansions(norm, words):
            extra += [t for t in self._term_tokens.get(term) or self._tokens(term) if t not in seen]
        return norm, own, list(dict.fromkeys(extra))

    def expand_query(self, text: str) -> str:
        """The normalized question with its expansion terms appended, for the dense embedder."""
        norm = self.normalize(text)
        extra = [t for t in self._expansions(norm, self._jieba.lcut(norm)) if t not in norm]
        return " ".join([norm, *extra]) if extra else norm

    # --- segmentation ----------------------------------------------------------------------

    def _tokens(self, norm: str, words: list[str] | None = None) -> list[str]:
        """Search-mode segmentation of normalized text, stopwords and punctuation dropped."""
        if words is None:
            words = self._jieba.lcut(norm)
        result: list[str] = []
        for i, word in enumerate(words):
            if word in self._stopwords or not _has_content(word):
                continue
            result += [piece for piece in self._pieces(word) if piece not in self._stopwords]
            following = words[i + 1] if i + 1 < len(words) else ""
            if following and _NUMBER.fullmatch(word) and (_is_han(following[0]) or following[0] == "%"):
                # a quantity is one term too (6岁, 30天, 2.5万): the bare 15 of 5月15日 is not 15岁
                result.append(word + following[0])
        return result

    def _pieces(self, word: str) -> Iterator[str]:
        """The word's in-dictionary sub-words, then the word (like jieba's search mode).

        jieba's cut_for_search only emits 2- and 3-grams; 4-grams matter too here
        (中等职业教育 → 职业教育, 家庭经济困难 → 经济困难).
        """
        if 2 < len(word) <= _MAX_GRAM_WORD and _is_han(word):
            freq = self._jieba.FREQ
            for n in range(2, len(word)):
                for start in range(len(word) - n + 1):
                    gram = word[start : start + n]
                    if freq.get(gram):
                        yield gram
        yield word

    # --- query expansion -------------------------------------------------------------------

    def _expansions(self, norm: str, words: list[str]) -> list[str]:
        """Document terms for a question: synonyms, then pinyin runs, then homophone typos."""
        found = [*self._synonym_terms(norm), *self._pinyin_terms(norm), *self._typo_terms(words)]
        return list(dict.fromkeys(found))

    def _synonym_terms(self, norm: str) -> list[str]:
        """Targets of colloquial keys, longest key first, a character used by one match only."""
        taken = bytearray(len(norm))
        matches: list[tuple[int, tuple[str, ...]]] = []
        for synonym in self._synonyms:
            if synonym.key not in norm:  # cheap filter before the regex
                continue
            for m in synonym.pattern.finditer(norm):
                start, end = m.span()
                if not any(taken[start:end]):
                    taken[start:end] = b"\x01" * (end - start)
                    matches.append((start, synonym.targets))
        return [term for _, targets in sorted(matches) for term in targets]

    def _pinyin_terms(self, norm: str) -> list[str]:
        """Terms spelled as toneless pinyin: "da ban e", "dabane" → 大班额 (longest run first)."""
        found: list[str] = []
        for run in _LATIN_RUN.finditer(norm):
            syllables = run.group().split(" ")
            i = 0
            while i < len(syllables):
                for j in range(min(len(syllables), i + _MAX_PINYIN_WORDS), i, -1):
                    terms = self._pinyin.get("".join(syllables[i:j]))
                    if terms:
                        found += terms
                        i = j
                        break
                else:
                    i += 1
        return found

    def _typo_terms(self, words: list[str]) -> list[str]:
        """Homophone typos: an out-of-vocabulary word that sounds like a term (资住 → 资助).

        Only words jieba could not find in its dictionary are tried, so correct words that
        happen to be homophones of a term (教室 vs 教师) are left alone.
        """
        found: list[str] = []
        for word in words:
            if not 2 <= len(word) <= _MAX_TYPO_WORD or not _is_han(word) or self._jieba.FREQ.get(word):
                continue
            syllables = lazy_pinyin(word)
            for n in range(len(word), 1, -1):
                for start in range(len(word) - n + 1):
                    found += self._pinyin.get("".join(syllables[start : start + n]), ())
        return found


@functools.lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The tokenizer with the shipped resources, created once per process (it loads jieba's dictionary)."""
    return Tokenizer()


def _synonym_pattern(key: str) -> re.Pattern[str]:
    """Chinese keys match as substrings; latin keys on word boundaries, plural s/es allowed.

    ``\\b`` cannot be used: hanzi are word characters, so "下teacher" has no boundary.
    """
    if not key.isascii():
        return re.compile(re.escape(key))
    return re.compile(rf"(?<![a-z0-9]){re.escape(key)}(?:s|es)?(?![a-z0-9])")


def _pinyin_index(terms: list[str]) -> dict[str, tuple[str, ...]]:
    """Toneless pinyin (syllables concatenated) → hanzi terms; ü typed as v or u."""
    index: dict[str, list[str]] = {}
    for term in dict.fromkeys(terms):
        if len(term) < 2 or not _is_han(term):
            continue
        key = "".join(lazy_pinyin(term))
        for variant in {key, key.replace("v", "u")}:
            if len(variant) >= 4:  # two-letter keys ("ai", "an") collide with English words
                index.setdefault(variant, []).append(term)
    return {key: tuple(terms) for key, terms in index.items()}
