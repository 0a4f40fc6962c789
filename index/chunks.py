"""Cut a parsed :class:`Document` into the :class:`Chunk` s that are indexed.

Every work item gives one ``item`` chunk (its title and whole body) and one
``sentence`` chunk per sentence, so a question can match a single clause
precisely or a whole item by its overall topic. A chunk is embedded and tokenized
as its text alone (see :mod:`index.build`). Ids are built from the document
id and the item's locator, never from list positions, so they stay stable when
other documents change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from index.domain import Chunk, Document, WorkItem

#: How chunks become vectors, recorded in each version's manifest: the shipped ranker is fitted
#: on indexes built this way, and a searcher warns when it serves one built otherwise.
VECTORS = "sentences as written; an item the mean of its sentences"

log = logging.getLogger(__name__)


def make_chunks(doc: Document) -> list[Chunk]:
    """All chunks of ``doc``: for each item, the item chunk then its sentence chunks."""
    chunks: list[Chunk] = []
    for section in doc.sections:
        for item in section.items:
            chunks.append(_chunk(doc, section.heading, item, "item", item.text, item.start, item.end, ""))
            for n, sentence in enumerate(item.sentences, start=1):
                chunks.append(_chunk(doc, section.heading, item, "sentence", sentence.text,
                                     sentence.start, sentence.end, f".s{n}"))
    return chunks


def _chunk(doc: Document, section: str, item: WorkItem, kind: str, text: str,
           start: int, end: int, suffix: str) -> Chunk:
    return Chunk(
        chunk_id=f"{doc.doc_id}#{item.locator}{suffix}",
        doc_id=doc.doc_id,
        doc_title=doc.title,
        year=doc.year,
        section=section,
        item_number=item.number,
        item_title=item.title,
        item_locator=item.locator,
        kind=kind,
        text=text,
        start=start,
        end=end,
        item_label=item.label,
    )


def warn_if_built_otherwise(manifest: dict) -> None:
    """Log when an index version was built by an earlier recipe: it still serves, ranked a little worse."""
    if manifest.get("vectors") != VECTORS:
        log.warning("index version %s was built by an earlier release (item vectors embedded whole); run "
                    "`policybot index build` once: the shipped ranker is fitted on the current recipe",
                    manifest.get("version"))


def item_layout(chunks: Sequence[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """The [lo, hi) chunk range of each item, and the item of each chunk.

    Chunks come item chunk first, then its sentences (see :func:`make_chunks`).
    """
    starts = [i for i, c in enumerate(chunks) if c.kind == "item"]
    ends = starts[1:] + [len(chunks)]
    ranges = np.array(list(zip(starts, ends, strict=True)), dtype=np.int64).reshape(-1, 2)
    chunk_item = np.zeros(len(chunks), dtype=np.int64)
    for n, (lo, hi) in enumerate(ranges):
        chunk_item[lo:hi] = n
    return ranges, chunk_item
