"""Parse the text of a policy document or law into a :class:`~index.domain.Document`.

Two layouts are recognised. Work plans: sections ``一、``, sub-sections ``（一）``
and numbered items ``1.`` / ``1、`` / ``（1）`` / ``【重点任务1】``; a plan in parts
(``第一部分``) has the parts as sections and their ``一、`` as sub-sections. Laws: chapters
``第X章`` (with optional ``第X节``) and articles ``第X条`` as items; in a law every
other marker (``（一）``, ``1.``) is body text of its article. Markdown heading marks
around markers are ignored, and a table of contents (dotted leaders and page
numbers) is skipped.

A marker only counts where it begins a line and continues its numbering by
exactly one (or restarts at 1 in a new scope), so numbers inside a body and
cross-references ("依照本法第十二条规定") never open an item. Every offset indexes
``Document.text``: ``text[s.start:s.end] == s.text`` holds for every sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from index.domain import Document, Section, WorkItem
from index.lines import Line, read_lines
from index.loader import load_text
from index.numerals import cn_int
from index.sentences import TERMINALS, split_sentences
from index.titles import document_title, document_year

_CN = "零〇一二两三四五六七八九十百千"
_NUM = rf"\d{{1,4}}|[{_CN}]{{1,8}}"
_PLAN_SECTION = re.compile(r"([一二三四五六七八九十百]{1,4})(?:、|[.．](?!\d))")  # 一、 (GB/T 9704), also 一. and 一．
_PLAN_SUB = re.compile(r"[（(]([一二三四五六七八九十]{1,4})[）)]")
_CHAPTER = re.compile(rf"第({_NUM})章")
_PART = re.compile(rf"第({_NUM})部分")
_LAW_SUB = re.compile(rf"第({_NUM})节")
_ARTICLE = re.compile(rf"第({_NUM})条(?!之)")
_ITEMS = (  # (family, pattern): the item numbering styles of work plans
    # 2.7月10日前报名 is item 2 (a date opens it), 2.5万 is a number, not item 2
    ("dot", re.compile(r"(\d{1,3})(?:[.．](?!\d)|[.．](?=\d{1,4}\s*[年月])|、)")),
    ("paren", re.compile(r"[（(](\d{1,3})[）)]")),
    ("bracket", re.compile(r"【([^】\d\s]{1,12})(\d{1,3})】")),
)
_APPENDIX = re.compile(r"附件\s*(\d{1,2}|[一二三四五六七八九十]{1,3})?\s*(?:[：:]\s*([^。；]{0,60}))?")
# The lines that close an official notice: its sender, its date, 抄送 / 印发 lines, 此件公开发布.
_SIGNATURE = re.compile(r"(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|[（(]此件[^）)]{1,20}[）)]|"
                        r"(?:抄送|抄报|主送)[:：].{0,200}|.{2,40}(?:\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日)?印发|"
                        r"[^，。；、:：\d]{2,30}(?:教育局|教育厅|教育委员会|人民政府|办公室|办公厅|委员会|教育部|学校)")
_NEXT_LINE = re.compile(r"\s*([^\n]{1,60})(?:\n|$)")
_TITLE_CUT = 24



# -- public API -------------------------------------------------------------------------------


#: Bump when a change to this module changes how a document parses: cached parses are then redone.
PARSER_VERSION = 10  # 10: an item may open with a date (2.9月1日开学 is item 2)


def parse_file(path: Path, *, doc_id: str | None = None) -> Document:
    """Load ``path`` with :func:`index.loader.load_text` and parse it; ``doc_id`` defaults to a slug."""
    path = Path(path)
    loaded = load_text(path)
    return parse_document(loaded.text, doc_id=doc_id or slug(path.stem), source=loaded.source,
                          format=loaded.format)


def parse_document(text: str, *, doc_id: str, source: str = "", format: str = "txt") -> Document:
    """Parse normalised ``text``; text with no recognisable structure gives zero sections."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = read_lines(text)
    markers = _markers(lines)
    body_start = lines[markers[0].line].start if markers else len(text)
    head = [ln for ln in lines if ln.start < body_start and ln.body and not ln.toc]
    title = document_title(head) or doc_id
    return Document(
        doc_id=doc_id,
        title=title,
        year=document_year(title, head),
        text=text,
        preamble=tuple(s for ln in head for s in split_sentences(ln.body, ln.start)),
        sections=_assemble(text, lines, markers),
        source=source,
        format=format,
    )


# -- lines and markers ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Marker:
    kind: str  # "section" | "sub" | "item" | "appendix"
    number: int
    numeral: str  # the number as written: "三", "12", "附件1"
    label: str  # "三、", "第十二条", "（二）", "12.", "【重点任务3】"
    family: str  # numbering style, for items: "dot", "paren", "bracket:重点任务", "article"
    line: int
    rest: int  # offset of the text after the label


def _markers(lines: list[Line]) -> list[_Marker]:
    # a law numbers its articles 第一条, 第二条 … at line starts
    articles = [cn_int(m.group(1)) for ln in lines if (m := _ARTICLE.match(ln.body))]
    law = any(b == a + 1 for a, b in zip(articles, articles[1:], strict=False))
    # a plan in parts (第一部分 回顾, 第二部分 要点) numbers its 一、二、 anew in each part: the
    # parts are its sections and the 一、 headings their sub-sections
    parts = [cn_int(m.group(1)) for ln in lines if not ln.toc and (m := _PART.match(ln.body))]
    in_parts = not law and parts[:2] == [1, 2]
    found = _Walker(law, require_section=True, in_parts=in_parts).run(lines)
    if not any(m.kind == "section" for m in found):  # items without sections: one unnamed section
        found = _Walker(law, require_section=False).run(lines)
    return found


@dataclass
class _Walker:
    """Accepts markers in document order only where their numbering continues."""

    law: bool
    require_section: bool
    in_parts: bool = False
    section: int | None = None
    sub: int | None = None
    family: str | None = None  # the item style of the current scope
    scope_items: int = 0
    last: dict[str, int] = field(default_factory=dict)  # last item number per style
    found: list[_Marker] = field(default_factory=list)

    def run(self, lines: list[Line]) -> list[_Marker]:
        for index, line in enumerate(lines):
            marker = None if line.toc else self._candidate(index, line)
            if marker is not None and self._accept(marker):
                self.found.append(marker)
        return self.found

    def _candidate(self, index: int, line: Line) -> _Marker | None:
        if self.law:
            return (_match("section", _CHAPTER, line, index) or _match("sub", _LAW_SUB, line, index)
                    or _match("item", _ARTICLE, line, index, "article"))
        if self.in_parts:
            found = _match("section", _PART, line, index, "part") or _match("sub", _PLAN_SECTION, line, index)
        else:
            found = _match("section", _PLAN_SECTION, line, index) or _match("sub", _PLAN_SUB, line, index)
        for family, pattern in _ITEMS:
            found = found or _match("item", pattern, line, index, family)
        return found or (_appendix(line, index) if self.section is not None else None)

    def _accept(self, m: _Marker) -> bool:
        if m.kind == "section" and m.number != (self.section or 0) + 1:
            return False
        if m.kind in ("section", "appendix"):
            self.section, self.sub = (self.section or 0) + (m.kind == "section"), None
            if m.family == "part":
                self.last = {}  # item numbers may start again in each part
        elif self.section is None and self.require_section:
            return False
        elif m.kind == "sub":
            if m.number != (self.sub or 0) + 1:
                return False
            self.sub = m.number
        else:
            return self._accept_item(m)
        self.family, self.scope_items = None, 0  # a new scope for items
        return True

    def _accept_item(self, m: _Marker) -> bool:
        if self.family not in (None, m.family):
            return False  # a second numbering style inside a scope is a list within an item's body
        follows = m.number == self.last.get(m.family, 0) + 1
        first_article = m.family == "article" and m.family not in self.last  # a law excerpt
        if not (follows or first_article or (self.scope_items == 0 and m.number == 1)):
            return False
        self.family, self.scope_items, self.last[m.family] = m.family, self.scope_items + 1, m.number
        return True


def _match(kind: str, pattern: re.Pattern[str], line: Line, index: int, family: str = "") -> _Marker | None:
    m = pattern.match(line.body)
    if m is None:
        return None
    numeral = m.group(m.lastindex or 1)
    if family == "bracket":
        family = f"bracket:{m.group(1)}"
    return _Marker(kind, cn_int(numeral), numeral, m.group(0), family, index, _skip_space(line, m.end()))


def _appendix(line: Line, index: int) -> _Marker | None:
    m = _APPENDIX.fullmatch(line.body)
    if m is None:
        return None
    label = line.body[: m.start(2)].rstrip() if m.group(2) else line.body
    number = cn_int(m.group(1)) if m.group(1) else 1
    numeral = f"附件{m.group(1) or ''}"
    return _Marker("appendix", number, numeral, label, "", index, _skip_space(line, len(label)))


def _skip_space(line: Line, offset: int) -> int:
    rest = line.body[offset:]
    return line.start + offset + len(rest) - len(rest.lstrip())


# -- assembling sections and items ------------------------------------------------------------


class _Builder:
    """Collects sections and their items as accepted markers arrive in document order."""

    def __init__(self, text: str, lines: list[Line]) -> None:
        self.text, self.lines = text, lines
        self.heads: list[tuple[_Marker | None, str, str]] = []  # marker, title, label
        self.drafts: list[tuple[int, WorkItem, tuple[str, str, str]]] = []  # section index, item, path
        self.subsection = self.sub_label = ""

    def add(self, m: _Marker, end: int, *, leaf: bool = False) -> None:
        if m.kind in ("section", "appendix") or not self.heads:
            self._open_section(m if m.kind in ("section", "appendix") else None)
        if m.kind == "sub":
            self.subsection = self.text[self.lines[m.line].start:self._title(m)[1]].rstrip("。")
            self.sub_label = m.label.rstrip("、.．")  # 一、 reads 一 in a locator (二/一/3)
        if m.kind == "item":
            title = _item_title(self.text[m.rest:end], law=m.family == "article")
            self._add(_work_item(self.text, m, end, title, self.subsection), _key(m))
        elif m.family == "part" or not m.label.startswith("第"):
            # a plan's section or sub-section text before its first item becomes an item of its
            # own so it stays searchable; a law's text lives in its articles only
            # A leaf whose heading is itself content (a notice's "（一）招生对象为…年满6周岁的儿童。")
            # is an item too, or its text would be lost.
            title, title_end = self._title(m)
            heading = self.text[m.rest:title_end]
            if end > title_end or (leaf and ("。" in heading or len(title) > _TITLE_CUT)):
                if end <= title_end:
                    title = _item_title(heading, law=False)
                self._add(_work_item(self.text, m, end, title, self.subsection), "")

    def sections(self) -> tuple[Section, ...]:
        items = _with_locators([(item, path) for _, item, path in self.drafts])
        sections = []
        for index, (head, title, label) in enumerate(self.heads):
            mine = tuple(item for (at, _, _), item in zip(self.drafts, items, strict=True) if at == index)
            sections.append(Section(number=head.numeral if head else "", title=title, items=mine, label=label))
        return tuple(sections)

    def _title(self, m: _Marker) -> tuple[str, int]:
        return _heading_title(self.text, m.rest, self.lines[m.line].end)

    def _open_section(self, head: _Marker | None) -> None:
        if head is None:
            self.heads.append((None, "", ""))
        else:  # the label keeps the space written after it, so Section.heading is verbatim
            self.heads.append((head, self._title(head)[0], self.text[self.lines[head.line].start:head.rest]))
        self.subsection = self.sub_label = ""

    def _add(self, item: WorkItem, key: str) -> None:
        head = self.heads[-1][0]
        self.drafts.append((len(self.heads) - 1, item, (head.numeral if head else "", self.sub_label, key)))


def _assemble(text: str, lines: list[Line], markers: list[_Marker]) -> tuple[Section, ...]:
    builder = _Builder(text, lines)
    end = _signature_start(lines, after=markers[-1].line if markers else 0)
    # an attachment named but not included (a bare 附件 before the sender's name) is no section
    if markers and markers[-1].kind == "appendix" and _block_end(lines, markers[-1].line, end) <= markers[-1].rest:
        end, markers = markers[-1].line, markers[:-1]
    for i, m in enumerate(markers):
        stop = markers[i + 1].line if i + 1 < len(markers) else end
        leaf = i + 1 == len(markers) or markers[i + 1].kind != "item"
        builder.add(m, _block_end(lines, m.line, stop), leaf=leaf)
    return builder.sections()


def _signature_start(lines: list[Line], *, after: int) -> int:
    """Where a notice's closing block begins (the sender, the date, 抄送 …, after the last item):
    it signs the document and is no part of its last item."""
    start = len(lines)
    for at in range(len(lines) - 1, after, -1):
        body = lines[at].body
        if body and not _SIGNATURE.fullmatch(body):
            break
        start = at
    return start


def _work_item(text: str, m: _Marker, end: int, title: str, subsection: str) -> WorkItem:
    start = m.rest
    while start < end and text[start].isspace():  # a label alone on its line: the body starts below
        start += 1
    end = max(start, end)
    return WorkItem(number=m.number, title=title, label=m.label, locator="", text=text[start:end],
                    sentences=split_sentences(text[start:end], start), start=start, end=end,
                    subsection=subsection)


def _key(m: _Marker) -> str:
    """An item's last locator step: ``3`` for ``3.`` and ``第三条``, ``（3）``, ``重点任务3``."""
    if m.family.startswith("bracket"):
        return m.label.strip("【】")
    return m.label if m.family == "paren" else str(m.number)


def _with_locators(drafts: list[tuple[WorkItem, tuple[str, str, str]]]) -> list[WorkItem]:
    """Plain numbers when they are unique in the document, else paths like ``二/（二）/3``."""
    numbers = [item.number for item, _ in drafts]
    plain = all(path[2] for _, path in drafts) and len(set(numbers)) == len(numbers)
    seen: dict[str, int] = {}
    items = []
    for item, path in drafts:
        locator = str(item.number) if plain else "/".join(p for p in path if p)
        seen[locator] = seen.get(locator, 0) + 1
        if seen[locator] > 1:  # a document that repeats a whole numbering; keep locators unique
            locator = f"{locator}#{seen[locator]}"
        items.append(replace(item, locator=locator))
    return items


def _block_end(lines: list[Line], first: int, stop: int) -> int:
    """Offset just past the last non-blank content line in ``lines[first:stop]``."""
    for line in reversed(lines[first:stop]):
        if line.body and not line.toc:
            return line.end
    return lines[first].end


def _heading_title(text: str, rest: int, line_end: int) -> tuple[str, int]:
    """A heading's title (up to its first 。) and the offset where the title sentence ends.

    A bare label (``附件1`` alone on its line) takes the next non-blank line as its title.
    """
    head = text[rest:line_end]
    if not head.strip():
        nxt = _NEXT_LINE.match(text, line_end)
        if nxt is None or nxt.group(1).rstrip().endswith(tuple(TERMINALS)):
            return "", line_end
        return nxt.group(1).strip(), nxt.end(1)
    stop = head.find("。")
    if stop < 0:
        return head.strip().rstrip("：:"), line_end
    return head[:stop].strip(), rest + stop + 1


def _item_title(body: str, *, law: bool) -> str:
    """``办好普惠优质学前教育`` for a plan item; a law article's first sentence, cut to ~24 chars."""
    first_line = body.split("\n", 1)[0].strip()
    stop = first_line.find("。")
    if not law and 0 < stop <= 40:
        return first_line[:stop]
    sentences = split_sentences(first_line)
    head = sentences[0].text.rstrip("。！？；!?;：:，,") if sentences else ""
    return head if len(head) <= _TITLE_CUT else head[:_TITLE_CUT] + "…"


def slug(stem: str) -> str:
    text = re.sub(r"\W+", "-", stem.lower()).strip("-")
    return text or "document"
