"""Split text into :class:`~index.domain.Sentence` s: after 。！？；!?; and at line breaks, never
inside brackets or quotes, and never inside a table row.

A table row (``项目: 新增学位 | 目标: 5000个``, or cells joined by tabs) is one sentence, so each
value is quoted beside its header.
"""

from __future__ import annotations

import re

from index.domain import Sentence

TERMINALS = frozenset("。！？；")
_ASCII_TERMINALS = frozenset("!?;")
#: A line ending so ends its sentence (。 or an ASCII ? at its end).
SENTENCE_ENDS = tuple(TERMINALS | _ASCII_TERMINALS)
#: A line ending so closes its paragraph: a sentence, or a colon before what it introduces.
PARAGRAPH_ENDS = (*TERMINALS, "：", ":")
_TABLE_ROW = re.compile(r"\S \| \S|\S\t+\S|^\|.*\|\s*$")
# opener -> the closers that match it (writers mix full-width and ASCII parentheses)
_PAIRS = {"（": "）)", "(": ")）", "“": "”", "‘": "’", "《": "》", "「": "」", "『": "』", "【": "】",
          "〔": "〕"}
_CLOSERS = frozenset("".join(_PAIRS.values()))


def split_sentences(text: str, base: int = 0) -> tuple[Sentence, ...]:
    """Split after 。！？；!?; and at line breaks, never inside （…）, (…), “…” and the like,
    and never inside a table row (one line with cells joined by `` | `` or tabs).

    Offsets are ``base`` plus the position in ``text``; surrounding whitespace is stripped.
    """
    sentences: list[Sentence] = []
    pos = 0
    for line in text.split("\n"):
        start = 0
        # a table row ("项目: 新增学位 | 目标: 5000个") is quoted whole, each value beside its header
        for end in () if _TABLE_ROW.search(line) else _sentence_ends(line):
            _emit(sentences, line, start, end, base + pos)
            start = end
        _emit(sentences, line, start, len(line), base + pos)
        pos += len(line) + 1
    return tuple(sentences)


def _sentence_ends(line: str) -> list[int]:
    """Offsets just after each sentence end in ``line`` that lies outside brackets and quotes."""
    depth = _bracket_depth(line)
    ends, i = [], 0
    while i < len(line):
        ch = line[i]
        ascii_end = ch in _ASCII_TERMINALS and (i + 1 == len(line) or not line[i + 1].isascii()
                                                or line[i + 1].isspace())
        if depth[i] == 0 and (ch in TERMINALS or ascii_end):
            i += 1
            while i < len(line) and (line[i] in TERMINALS or line[i] in _CLOSERS):
                i += 1  # keep "？！" and a stray closing quote with the sentence
            ends.append(i)
            continue
        i += 1
    return ends


def _bracket_depth(line: str) -> list[int]:
    """Per character, how many matched bracket or quote pairs enclose it (unmatched ones are ignored)."""
    delta = [0] * (len(line) + 1)
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(line):
        if stack and ch in _PAIRS.get(stack[-1][0], '"'):
            _, opened = stack.pop()
            delta[opened + 1] += 1
            delta[i] -= 1
        elif ch in _PAIRS or ch == '"':
            stack.append((ch, i))
    depth, running = [], 0
    for i in range(len(line)):
        running += delta[i]
        depth.append(running)
    return depth


def _emit(out: list[Sentence], line: str, start: int, end: int, base: int) -> None:
    chunk = line[start:end]
    stripped = chunk.strip()
    if stripped:
        lead = len(chunk) - len(chunk.lstrip())
        out.append(Sentence(stripped, base + start + lead, base + start + lead + len(stripped)))


#: Shorter than this, a line without a sentence end is a table cell or a label (小学段, 湖南小学).
STUB_CHARS = 8


def is_stub(sentence: str) -> bool:
    """A table cell or a label rather than a statement: near any question that names its one or
    two words (孩子几岁上小学 ~ 小学), so no evidence that its item answers and nothing to quote.
    A line of figures alone (2061/62.6) is a cell however long."""
    text = sentence.strip()
    if text.endswith(SENTENCE_ENDS):
        return False
    return len(text) < STUB_CHARS or not _LETTER.search(text)


_LETTER = re.compile(r"[^\W\d_]")
