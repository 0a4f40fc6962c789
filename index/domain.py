"""Small typed values that flow through the retrieval library.

A parsed :class:`Document` holds :class:`Section` s, which hold :class:`WorkItem` s
(numbered work items, or articles 第X条 of a law), which hold :class:`Sentence` s.
:class:`Chunk` is the unit that is indexed (a sentence or a whole item) and
:class:`Hit` is what a search returns: one work item with its best sentences.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

_ARTICLE_LABEL = re.compile(r"第.{1,8}条")


def is_article(label: str) -> bool:
    """Whether an item's ``label`` numbers a law's article (第十二条), not a plan's item (12.)."""
    return bool(_ARTICLE_LABEL.match(label))


def content_hash(text: str) -> str:
    """Stable hash of a text (the embedding cache's key of a sentence, with a prefix)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ItemAddress:
    """Where a work item is: the one address type of chunks, hits and citations.

    ``(doc_id, locator)`` identifies the item (:attr:`key`); ``section``, ``number`` and
    ``label`` say how a citation names it (``五、深化教学改革… › 12.``, ``第十一条``).
    """

    doc_id: str
    section: str
    number: int
    locator: str
    label: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.doc_id, self.locator)


@dataclass(frozen=True)
class Sentence:
    """One sentence, quoted verbatim; offsets index into ``Document.text``."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class WorkItem:
    """A numbered work item (``12.办好普惠优质学前教育。…``) or a law's article (``第十二条``).

    ``locator`` is unique within its document (``"12"``; for plans whose numbering
    restarts per sub-section, something like ``"三/（二）/1"``). ``label`` is how the
    document writes the number (``"12."``, ``"第十二条"``).
    """

    number: int
    title: str
    label: str
    locator: str
    text: str
    sentences: tuple[Sentence, ...]
    start: int
    end: int
    subsection: str = ""


@dataclass(frozen=True)
class Section:
    """A top-level section (``一、…`` or ``第一章 …``) and its items."""

    number: str
    title: str
    items: tuple[WorkItem, ...]
    label: str = ""

    @property
    def heading(self) -> str:
        """The heading as the document writes it, e.g. ``五、深化教学改革，提高教育质量``."""
        return f"{self.label}{self.title}" if self.label else self.title


@dataclass(frozen=True)
class Document:
    """A parsed document: title, year, preamble and its sections.

    ``text`` is the normalised full text every offset refers to.
    """

    doc_id: str
    title: str
    year: int | None
    text: str
    preamble: tuple[Sentence, ...]
    sections: tuple[Section, ...]
    source: str = ""
    format: str = "txt"

    @property
    def items(self) -> tuple[WorkItem, ...]:
        return tuple(item for section in self.sections for item in section.items)

    def section_of(self, item: WorkItem) -> Section:
        for section in self.sections:
            if item in section.items:
                return section
        raise KeyError(item.locator)


@dataclass(frozen=True)
class Chunk:
    """The indexed unit: one sentence (``kind="sentence"``) or a whole item (``kind="item"``)."""

    chunk_id: str
    doc_id: str
    doc_title: str
    year: int | None
    section: str
    item_number: int
    item_title: str
    item_locator: str
    kind: str
    text: str
    start: int
    end: int
    # no longer written (the embedding cache keys a text by index.build.embedding_key); kept so
    # the chunks.json of versions built before still load, for a rollback
    hash: str = field(default="")
    item_label: str = ""

    @property
    def address(self) -> ItemAddress:
        return ItemAddress(self.doc_id, self.section, self.item_number, self.item_locator, self.item_label)


@dataclass(frozen=True)
class Hit:
    """One work item found for a question, with its best sentences (verbatim) and scores.

    ``confidence`` is calibrated to [0, 1]: below the caller's threshold it should abstain.
    """

    doc_id: str
    doc_title: str
    year: int | None
    section: str
    item_number: int
    item_title: str
    item_locator: str
    sentences: tuple[str, ...]
    score: float
    confidence: float
    lexical: float = 0.0
    dense: float = 0.0
    item_label: str = ""
    text: str = ""  # the item's full text, verbatim
    ref: str = ""  # what a user types to open the item: unique across the library

    @property
    def address(self) -> ItemAddress:
        return ItemAddress(self.doc_id, self.section, self.item_number, self.item_locator, self.item_label)


def document_sha256(doc: Document) -> str:
    """Hash of a document's text, as recorded in the manifest (compare it to see what is served)."""
    return hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


def document_from_dict(d: dict[str, Any]) -> Document:
    """Rebuild a :class:`Document` from its ``asdict`` form (documents.json, parsed.json)."""
    sections = tuple(
        Section(number=s["number"], title=s["title"], label=s.get("label", ""),
                items=tuple(_item_from_dict(i) for i in s["items"]))
        for s in d["sections"]
    )
    fields = {k: v for k, v in d.items() if k not in ("sections", "preamble")}
    return Document(**fields, preamble=tuple(Sentence(**s) for s in d["preamble"]), sections=sections)


def _item_from_dict(d: dict[str, Any]) -> WorkItem:
    fields = {k: v for k, v in d.items() if k != "sentences"}
    return WorkItem(**fields, sentences=tuple(Sentence(**s) for s in d["sentences"]))
