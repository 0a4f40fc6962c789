"""Undo hard line breaks: a PDF's text layer, or a text file copied from one or from a web page,
breaks every line at the page width; the parser needs one paragraph per line.

A line that fills the text width continues on the next, unless it ends a sentence and the next
line opens a numbered part (一、 （二） 3. 第X条: :data:`index.lines.OPENS_PART`). A text file
is re-joined only when it looks wrapped (:func:`hard_wrapped`); one paragraph per line stays.
"""

from __future__ import annotations

import unicodedata

from index.lines import OPENS_PART, TOC_LEADER
from index.sentences import PARAGRAPH_ENDS

_ENDS_LINE = (*PARAGRAPH_ENDS, "，", ",", "、", "|")  # a line so ended stops at a clause, not mid-word
WRAPPED_MIN_LINES, WRAPPED_SHARE = 3, 0.2


def unwrapped(text: str) -> str:
    """A text file saved with hard line breaks (copied from a PDF or a web page at a fixed width)
    has its paragraphs joined again, as a PDF's are; one paragraph per line stays as it is."""
    lines = text.split("\n")
    return reflow(lines) if hard_wrapped(lines) else text


def hard_wrapped(lines: list[str]) -> bool:
    """Many lines fill the width and stop mid-sentence: the text was wrapped at that width. (In
    the corpus's files, one paragraph per line, at most 6 % of the lines fill the width without
    ending a sentence: table cells; in a wrapped text most paragraph lines do.)"""
    body = [line.rstrip() for line in lines if line.strip() and not TOC_LEADER.search(line)]
    full = _full_width(body)
    mid_sentence = [line for line in body if _width(line) >= full - 6 and not line.endswith(_ENDS_LINE)]
    return len(mid_sentence) >= WRAPPED_MIN_LINES and len(mid_sentence) >= WRAPPED_SHARE * len(body)



def reflow(lines: list[str]) -> str:
    """``lines`` joined into paragraphs: a line that fills the text width continues on the next."""
    lines = [line.rstrip() for line in lines]
    full = _full_width(lines)
    paragraphs: list[str] = []
    previous = ""
    for line in lines:
        if paragraphs and previous and line.strip() and not _breaks(previous, line, full):
            paragraphs[-1] = _glue(paragraphs[-1], line)
        else:
            paragraphs.append(line)
        previous = line
    return "\n".join(paragraphs)


def _breaks(previous: str, line: str, full: int) -> bool:
    if _width(previous) < full - 6:  # three CJK characters short of the margin: paragraph ended
        return True
    return previous.endswith(PARAGRAPH_ENDS) and OPENS_PART.match(line) is not None


def _full_width(lines: list[str]) -> int:
    """The text width of wrapped lines: a high percentile, so one overlong line does not set it."""
    widths = sorted(_width(line) for line in lines if line.strip())
    return max(widths[int(0.9 * (len(widths) - 1))], 40) if widths else 40


def _width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def _glue(head: str, tail: str) -> str:
    tail = tail.lstrip()
    if head[-1:].isascii() and head[-1:].isalnum() and tail[:1].isascii() and tail[:1].isalpha():
        return f"{head} {tail}"  # an English word wrapped at a space
    return head + tail
