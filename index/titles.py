"""A document's own title and year, from the lines before its first section.

Official documents open with a letterhead (绍兴市教育局, 〔2021〕12号), sometimes a line of
amendment history (1985年…通过), and then the title, often ending in the kind of document it is
(…的通知, …条例) and sometimes broken over two lines. A notice that prints a plan names it in
《…》: the plan is the title.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from index.sentences import PARAGRAPH_ENDS, TERMINALS

_BOOK_TITLE = re.compile(r"《([^《》\n]{2,80})》")
_DATE_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
                        r"|[-./]\d{1,2}[-./]\d{1,2})")
_ANY_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
# What an official document calls itself at the end of its title.
_DOC_KIND = re.compile(r"(?:通知|意见|方案|规划|计划|要点|办法|条例|规定|法|决定|细则|纲要|标准|公告|通报|报告|指南|"
                       r"规则|章程|规程|守则|批复|函|通告|说明)(?:[（(][^）)]{1,12}[）)])?$")
# A sender's letterhead or a document number: never the title.
_LETTERHEAD = re.compile(r"^[^，。；]{2,24}(?:文件|教育局|教育厅|委员会|人民政府|办公室|办公厅)$"
                         r"|[〔\[]\d{4}[〕\]]|第?\d+号$")
# What a notice that carries another document says before its 《…》.
_PRINTS = re.compile(r"(?:印发|转发|颁布|发布|公布|下发)[^《》，。]{0,16}$")
# An amendment-history line quotes the names the document had before.
_HISTORY = re.compile(r"(?:19|20)\d{2}\s*年[^。]{0,60}(?:通过|修正|修订|公布|施行|发布|批准)")


class HeadLine(Protocol):
    """A line of a document's head: its text and its Markdown heading level (0: none)."""

    body: str
    heading: int


def document_title(head: Sequence[HeadLine]) -> str:
    """The document's own title, from the lines before its first section.

    In order: a Markdown ``# heading``; a 《…》 naming a kind of document (关于印发《…》的通知
    gives the plan it prints); a line ending with a kind of document (…的通知, …条例), joined
    across a line break. Letterheads (绍兴市教育局, 〔2021〕12号) and amendment-history lines
    (1985年…通过) never give the title: they name the sender or an older name.
    """
    if heading := next((ln.body for ln in head[:8] if ln.heading == 1), None):
        return (_printed(heading) or heading).strip()
    lines = _title_lines(head[:12])
    for text in lines:
        # 《…》 in a heading line only: a sentence of the preamble (为贯彻《义务教育法》，…) quotes
        # another document, it does not name this one
        if len(text) > 80 or any(mark in text for mark in "，,") or text.endswith(tuple(TERMINALS)):
            continue
        if printed := _printed(text):
            return printed.strip()
    for text in lines:
        if len(text) <= 80 and _DOC_KIND.search(text):
            return text
    return next((t for t in lines if len(t) <= 40 and not t.endswith(tuple(TERMINALS))), "")


def _printed(line: str) -> str | None:
    """The document a title line prints, if it prints one: the line is that 《…》 alone, or it
    prints it (关于印发《…》的通知, 转发…《…》). In 湖南省实施《中华人民共和国义务教育法》办法 the 《…》
    is the law the title's own document carries out."""
    for m in _BOOK_TITLE.finditer(line):
        if _DOC_KIND.search(m.group(1)) and (line.strip() == m.group(0) or _PRINTS.search(line[:m.start()])):
            return m.group(1)
    return None


def _title_lines(head: Sequence[HeadLine]) -> list[str]:
    """Head lines that can hold a title, with a title broken over two lines joined again."""
    bodies = [ln.body.strip() for ln in head if not _LETTERHEAD.search(ln.body.strip())
              and not _HISTORY.search(ln.body)]
    out: list[str] = []
    for body in bodies:
        if out and _DOC_KIND.search(out[-1] + body) and not _DOC_KIND.search(out[-1]) \
                and len(out[-1]) <= 40 and not out[-1].endswith(PARAGRAPH_ENDS):
            out[-1] += body
        else:
            out.append(body)
    return out


def document_kind(title: str) -> str:
    """What a document calls itself at the end of its title (要点, 通知, 条例 …; "" for none): the
    kind that 今年 / 去年 choose a year within."""
    m = _DOC_KIND.search(re.sub(r"[《》\s]", "", title))
    return re.sub(r"[（(].*$", "", m.group(0)) if m else ""


def document_year(title: str, head: Sequence[HeadLine]) -> int | None:
    """The year in the title, else the latest dated line of the header (a law's last amendment)."""
    if m := _ANY_YEAR.search(title):
        return int(m.group(1))
    lines = [line.body for line in head[:12]]
    dated = [int(m.group(1)) for body in lines for m in _DATE_YEAR.finditer(body)]
    years = [int(m.group(1)) for body in lines for m in _ANY_YEAR.finditer(body)]
    return max(dated) if dated else (years[0] if years else None)
