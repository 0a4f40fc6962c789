"""Small typed values that flow through the retrieval library.

A parsed :class:`Document` holds :class:`Section` s, which hold :class:`WorkItem` s
(numbered work items, or articles 第X条 of a law), which hold :class:`Sentence` s.
:class:`Chunk` is the unit that is indexed (a sentence or a whole item) and
:class:`Hit` is what a search returns: one work item with its best sentences.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def content_hash(text: str) -> str:
    """Stable hash of a chunk's text, used to skip re-embedding unchanged sentences."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


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
    hash: str = field(default="")
    item_label: str = ""


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
