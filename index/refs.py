"""References a user types to open an item: a short document code plus the item's number.

``YW11`` is article 11 of 《中华人民共和国义务教育法》; ``HY12`` item 12 of the 衡阳 plan. The
code is the pinyin initials of the document's short title (its name without
中华人民共和国, years and brackets), so it reads as the document; codes that collide take a
third initial, then a letter. A document keeps its code from one index version to the next
(the build passes the served version's codes as ``keep``), so a reference a user was given
still opens the same item after other documents are added. Items go by their own numbers when
these are unique in the document (laws, most plans), else by position (plans whose numbering
restarts in every section).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from itertools import product
from string import ascii_uppercase

from pypinyin import Style, lazy_pinyin

from index.domain import Document, WorkItem

_CODE = re.compile(r"[A-Z]{1,3}")  # what REF reads before the number
_NOISE = re.compile(r"中华人民共和国|[《》“”\"（）()\[\]【】\d\s]|年")


def document_codes(documents: Sequence[Document], keep: Mapping[str, str] | None = None) -> dict[str, str]:
    """doc_id → code, unique across ``documents``: the code ``keep`` gives a document (its code
    in the served version) if it is still a valid, unclaimed code; the others in doc_id order,
    each the first free one of its candidates, so the result does not depend on input order."""
    ids = {d.doc_id for d in documents}
    codes: dict[str, str] = {}
    taken: set[str] = set()
    for doc_id, code in sorted((keep or {}).items()):
        if doc_id in ids and isinstance(code, str) and _CODE.fullmatch(code) and code not in taken:
            codes[doc_id] = code
            taken.add(code)
    for doc in sorted(documents, key=lambda d: d.doc_id):
        if doc.doc_id not in codes:
            codes[doc.doc_id] = code = next(c for c in _candidates(_initials(doc.title) or "D") if c not in taken)
            taken.add(code)
    return codes


def _candidates(initials: str) -> Iterator[str]:
    """Codes for a document, most telling first; letters only, so the number after them is the item."""
    yield initials[:2]
    yield initials[:3]
    yield from (initials[:2] + c for c in ascii_uppercase)
    yield from (initials[:1] + a + b for a, b in product(ascii_uppercase, repeat=2))
    yield from ("".join(letters) for letters in product(ascii_uppercase, repeat=3))


REF = re.compile(r"([A-Z]{1,3})\s*(\d{1,4})")


def item_ordinal(doc: Document, item: WorkItem | None) -> str:
    """The item's part of a reference: its number when unique in ``doc``, else its position."""
    if item is None:
        return ""
    return dict(zip(doc.items, _ordinals(doc), strict=True))[item]


def library_refs(documents: Sequence[Document], codes: Mapping[str, str] | None = None
                 ) -> dict[str, tuple[Document, WorkItem]]:
    """Every reference of the library and the item it opens (one pass; build once per index).
    ``codes``: the version's document codes (its manifest's), or None to assign them afresh."""
    codes = document_codes(documents, keep=codes)
    return {f"{codes[doc.doc_id]}{ordinal}": (doc, item)
            for doc in documents for item, ordinal in zip(doc.items, _ordinals(doc), strict=True)}


def _ordinals(doc: Document) -> list[str]:
    items = doc.items
    numbers = [i.number for i in items]
    if len(set(numbers)) == len(numbers):
        return [str(n) for n in numbers]
    return [str(n) for n in range(1, len(items) + 1)]


def _initials(title: str) -> str:
    short = _NOISE.sub("", title)
    letters = [p[:1] for p in lazy_pinyin(short, style=Style.FIRST_LETTER) if p[:1].isalpha()]
    return "".join(letters[:3]).upper()
