"""Values the chat layer passes around: a user's :class:`Question`, the channel's
:class:`Limit`, and the :class:`Answer` with its :class:`Citation` s.

Channel objects (XML, Telegram updates) stop at the blueprint: they are turned
into a ``Question`` at once, and dialog/compose never see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from index.domain import Hit, ItemAddress


@dataclass(frozen=True)
class Question:
    """What a user asked, on which channel. ``user_id`` is the raw platform id: hash it before storing."""

    channel: str
    user_id: str
    text: str
    message_id: str = ""
    scope: str | None = None  # search only this document (doc_id); None: the whole library


@dataclass(frozen=True)
class Limit:
    """How long one reply may be on a channel (WeChat counts UTF-8 bytes, Telegram characters)."""

    max_bytes: int | None = None
    max_chars: int | None = None


WECHAT_LIMIT = Limit(max_bytes=2048)
TELEGRAM_LIMIT = Limit(max_chars=4096)
UNLIMITED = Limit()


@dataclass(frozen=True)
class Citation:
    """Where a quoted sentence comes from: document, section, item number and title."""

    doc_title: str
    section: str
    item_number: int
    item_title: str
    item_locator: str = ""
    item_label: str = ""
    doc_id: str = ""

    @classmethod
    def at(cls, address: ItemAddress, doc_title: str, item_title: str) -> Citation:
        """The citation of the item at ``address`` (a hit's, or an item's of a document)."""
        return cls(doc_title, address.section, address.number, item_title, address.locator, address.label,
                   address.doc_id)

    @property
    def address(self) -> ItemAddress:
        return ItemAddress(self.doc_id, self.section, self.item_number, self.item_locator, self.item_label)

    def render(self) -> str:
        """``《衡阳市教育局2020年工作要点》五、深化教学改革… › 12. 办好普惠优质学前教育``;
        a law's article is cited as the law numbers it: ``… › 第十一条 凡年满六周岁的儿童…``."""
        return f"《{self.doc_title}》{self.section} › {numbered(self.item_label, self.item_number, self.item_title)}"


def numbered(label: str, number: int, title: str = "") -> str:
    """An item's number as its document writes it, then its title: ``12. 办好普惠优质学前教育``,
    ``第十一条 凡年满…``, ``（一）小学招收…``, ``【重点任务3】…``; ``3.`` when no label was kept."""
    shown = label or f"{number}."
    gap = "" if shown.endswith(("、", "）", ")", "】")) else " "
    return f"{shown}{gap}{title}" if title else shown


@dataclass(frozen=True)
class Answer:
    """A reply ready for a channel. ``kind`` names the dialog path that produced it
    (answer, abstain, help, toc, item, empty, unsupported)."""

    text: str
    kind: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    confidence: float = 0.0
    abstained: bool = False
    truncated: bool = False
    extra: dict = field(default_factory=dict, compare=False)
