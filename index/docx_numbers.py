"""The list numbers Word draws in front of paragraphs (一、 1. （1）), which ``paragraph.text`` omits.

A notice drafted in Word often numbers its sections and items automatically: the text of such
a paragraph holds no 一、 or 1., so without the numbers the parser would find no items and cite
none. The numbers are computed the way Word does for the common cases: each paragraph's
``numPr`` (its own or its style's) names a numbering instance and a level; the instance's
abstract definition gives each level's start, format and label template (``%1、``, ``（%2）``);
counting a level restarts the levels below it. Bullets and unknown formats give no label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from docx.oxml.ns import qn

_CN_DIGITS = "零一二三四五六七八九"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


@dataclass(frozen=True)
class _Level:
    start: int
    fmt: str
    text: str


@dataclass
class ListNumbers:
    """Renders the list label of each paragraph of one document, in document order."""

    levels: dict[str, dict[int, _Level]]  # numId → ilvl → level definition
    counters: dict[str, dict[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, document) -> ListNumbers:
        """The numbering definitions of a python-docx ``Document`` (none when it has no numbering part)."""
        try:
            numbering = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return cls({})
        abstract = {a.get(qn("w:abstractNumId")): _levels(a) for a in numbering.findall(qn("w:abstractNum"))}
        levels = {}
        for num in numbering.findall(qn("w:num")):
            ref = num.find(qn("w:abstractNumId"))
            defined = dict(abstract.get(ref.get(qn("w:val")) if ref is not None else None, {}))
            for override in num.findall(qn("w:lvlOverride")):
                start = override.find(qn("w:startOverride"))
                ilvl = _int(override.get(qn("w:ilvl")))
                if start is not None and ilvl in defined:
                    old = defined[ilvl]
                    defined[ilvl] = _Level(_int(start.get(qn("w:val")), old.start), old.fmt, old.text)
            levels[num.get(qn("w:numId"))] = defined
        return cls(levels)

    def label(self, paragraph) -> str:
        """The label Word shows before ``paragraph`` ("" when it is not numbered), counting it."""
        num_id, ilvl = _num_pr(paragraph)
        levels = self.levels.get(num_id or "")
        if not levels or ilvl not in levels:
            return ""
        counts = self.counters.setdefault(num_id, {})
        counts[ilvl] = counts.get(ilvl, levels[ilvl].start - 1) + 1
        for deeper in [k for k in counts if k > ilvl]:
            del counts[deeper]
        return _render(levels, counts, ilvl)


def _levels(abstract) -> dict[int, _Level]:
    found = {}
    for lvl in abstract.findall(qn("w:lvl")):
        start, fmt, text = (lvl.find(qn(f"w:{tag}")) for tag in ("start", "numFmt", "lvlText"))
        found[_int(lvl.get(qn("w:ilvl")))] = _Level(
            _int(start.get(qn("w:val")) if start is not None else None, 1),
            fmt.get(qn("w:val"), "decimal") if fmt is not None else "decimal",
            text.get(qn("w:val"), "") if text is not None else "")
    return found


def _num_pr(paragraph) -> tuple[str | None, int]:
    """(numId, ilvl) from the paragraph's own properties, else from its style (and the styles
    that style is based on)."""
    sources = [paragraph._p.pPr]
    style = paragraph.style
    while style is not None:
        sources.append(style.element.pPr)
        style = style.base_style
    for ppr in sources:
        num_pr = ppr.find(qn("w:numPr")) if ppr is not None else None
        if num_pr is None:
            continue
        num_id, ilvl = num_pr.find(qn("w:numId")), num_pr.find(qn("w:ilvl"))
        if num_id is not None:
            return num_id.get(qn("w:val")), _int(ilvl.get(qn("w:val")) if ilvl is not None else None)
    return None, 0


def _render(levels: dict[int, _Level], counts: dict[int, int], ilvl: int) -> str:
    if levels[ilvl].fmt in ("bullet", "none"):
        return ""
    text = levels[ilvl].text
    for k in range(ilvl + 1):
        if f"%{k + 1}" in text:
            value = _format(counts.get(k, levels[k].start if k in levels else 1), levels.get(k, levels[ilvl]).fmt)
            if value is None:
                return ""
            text = text.replace(f"%{k + 1}", value)
    return text


def _format(n: int, fmt: str) -> str | None:
    if fmt in ("decimal", "decimalZero", "decimalFullWidth", "decimalHalfWidth"):
        return str(n)
    if fmt.startswith(("chineseCounting", "ideographTraditional", "taiwaneseCounting", "japaneseCounting")):
        return _chinese(n)
    if fmt == "decimalEnclosedCircle" and 1 <= n <= len(_CIRCLED):
        return _CIRCLED[n - 1]
    if fmt in ("upperLetter", "lowerLetter") and 1 <= n <= 26:
        return chr((65 if fmt == "upperLetter" else 97) + n - 1)
    return None  # a format nobody types as a section or item number here


def _chinese(n: int) -> str:
    """一 … 九十九 (section and item numbers), digits beyond."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _CN_DIGITS[tens] + "十")
    return head + (_CN_DIGITS[ones] if ones else "")


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
