"""A document's lines as the parser reads them: each line's content without indentation or
Markdown heading marks, with its offsets into the text, and whether it belongs to a table of
contents (entries with dotted leaders and page numbers, or the bare entries under a 目录 heading
that the body then repeats) — contents lines never open a section or an item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

# the lookbehinds start a try only at the head of a run of leaders: no quadratic rescans
TOC_LEADER = re.compile(r"(?:(?<!…)…{3,}+|(?<!\.)\.{6,}+|(?<!·)·{6,}+|(?<!－)－{4,}+|(?<!_)_{6,}+)"
                         r"\s*+\d{1,4}(?!\d)")
_TOC_HEADING = re.compile(r"目\s*录")
_MD_PREFIX = re.compile(r"[ \t\u3000]*(?:#{1,6}[ \t\u3000]+)?")
#: A line opening a numbered part (一、 （一） 1. 第X章/节/条/部分 【…】 附件): it starts a new paragraph when
#: a PDF is re-wrapped and is never a table cell (index.structure holds the patterns it parses by).
OPENS_PART = re.compile(
    r"\s*(?:[一二三四五六七八九十百]{1,4}、|[（(][一二三四五六七八九十\d]{1,3}[）)]|\d{1,3}(?:[.．](?!\d)|[.．](?=\d{1,4}\s*[年月])|、)"
    r"|第[一二三四五六七八九十百千零〇\d]{1,7}[章节条部]|【[^】]{0,12}】|附件)"
)
_TOC_MAX_LINES = 400  # a contents block longer than this is not one
_TOC_ENTRY_MAX = 60  # a contents entry is a heading, not a paragraph


@dataclass(frozen=True)
class Line:
    start: int  # offset of the content, after indentation and Markdown '#' marks
    end: int  # offset just past the content
    body: str
    toc: bool
    heading: int  # Markdown heading level, 0 for none


def read_lines(text: str) -> list[Line]:
    """Every line of ``text`` (blank ones too, so indices follow the text), contents marked."""
    lines, pos = [], 0
    for raw in text.split("\n"):
        prefix = _MD_PREFIX.match(raw).end()  # type: ignore[union-attr]
        body = raw[prefix:].rstrip()
        toc = bool(TOC_LEADER.search(body) or _TOC_HEADING.fullmatch(body))
        lines.append(Line(pos + prefix, pos + prefix + len(body), body, toc, raw[:prefix].count("#")))
        pos += len(raw) + 1
    return _mark_toc_blocks(lines)


def _mark_toc_blocks(lines: list[Line]) -> list[Line]:
    """Mark the entries under a 目录 heading as contents, leaders or not.

    A law's contents list its chapters bare (第一章　总则 …) and the body then repeats them; the
    block runs from the heading to the line that repeats its first entry, and only headings
    (short lines, no sentence) may stand in it. With no repeat, nothing is marked.
    """
    out = list(lines)
    for at, line in enumerate(lines):
        if not _TOC_HEADING.fullmatch(line.body):
            continue
        entries = [i for i in range(at + 1, min(len(lines), at + _TOC_MAX_LINES)) if lines[i].body]
        first = _toc_key(lines[entries[0]].body) if entries else ""
        for n, i in enumerate(entries):
            body = lines[i].body
            if n and _toc_key(body) == first:
                for j in entries[:n]:
                    out[j] = replace(out[j], toc=True)
                break
            if len(body) > _TOC_ENTRY_MAX or any(t in body for t in "。；;"):
                break
    return out


def _toc_key(body: str) -> str:
    return re.sub(r"[\s\u3000]+", "", TOC_LEADER.sub("", body))
