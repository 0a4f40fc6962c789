"""What an answer quotes, sized for one phone screen: the best hit and those nearly as good
(:func:`pick_hits`), the sentences of the best one that answer (:func:`answering_sentences`), in
quotes (:func:`in_quotes`) over a one-line citation (:func:`short_cite`).

Only choices and verbatim copies: every sentence is the index's own text. :mod:`bot.compose`
frames them in the reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.domain import numbered
from index.domain import Hit
from index.sentences import split_sentences

#: The point after each sentence end or line end: where a text may be split without cutting a sentence.
PIECE_END = re.compile(r"(?<=[。！？；!?;\n])")

#: Quoted characters aimed at for the best item: with its citation line and a pointer or two the
#: answer stays within one 390 x 844 phone screen (~220 Chinese characters).
QUOTE_CHARS = 150
#: Another item is pointed to only when its calibrated confidence is this close to the best one's.
NEARLY_AS_GOOD = 0.1


def pick_hits(hits: Sequence[Hit], *, max_items: int,
              min_confidence: float = 0.0) -> tuple[Hit | None, tuple[Hit, ...]]:
    """The best hit, and those nearly as good (within :data:`NEARLY_AS_GOOD` of its confidence and
    at least ``min_confidence`` sure), up to ``max_items`` in all."""
    if not hits:
        return None, ()
    best, bar = hits[0], max(min_confidence, hits[0].confidence - NEARLY_AS_GOOD)
    return best, tuple(h for h in hits[1:max_items] if h.confidence >= bar)


def answering_sentences(hit: Hit, budget: int, most: int = 3) -> tuple[str, ...]:
    """The sentences of ``hit`` to quote: those the search chose, minus the item's own title (the
    citation shows it) and table fragments (a lone cell says nothing), within ``budget``
    characters (the first always) and ``most`` sentences; when nothing of the search's choice is
    left, the item's first sentences instead."""
    chosen = [s for s in hit.sentences if _says_something(s, hit)]
    if not chosen:
        chosen = [s for s in sentences(hit.text) if _says_something(s, hit)] or list(hit.sentences)
    kept = chosen[:1]
    for sentence in chosen[1:most]:
        if sum(map(len, kept)) + len(sentence) > budget:
            break
        kept.append(sentence)
    return tuple(kept)


#: A quoted sentence shorter than this is a table cell or a heading, not an answer.
MIN_QUOTE_CHARS = 6


def _says_something(sentence: str, hit: Hit) -> bool:
    text = sentence.strip().rstrip("。.")
    return len(text) >= MIN_QUOTE_CHARS and text != hit.item_title.rstrip("。.")


def sentences(text: str) -> list[str]:
    """The sentences (and lines) of ``text``, verbatim, as the parser splits them (never inside
    （…） or “…”, a table row whole)."""
    return [s.text for s in split_sentences(text)]


def short_cite(hit: Hit, *, quoted: bool = False) -> str:
    """The citation on one line: document and item (``《…》12. 办好普惠优质学前教育``). A law's
    article has no title of its own, only its first words: beside its quote the label says enough
    (``《…》第十一条``)."""
    article = hit.item_label.startswith("第")
    title = "" if article and quoted else hit.item_title
    return f"《{hit.doc_title}》{numbered(hit.item_label, hit.item_number, title)}"


def in_quotes(hit: Hit) -> str:
    """The sentences in quotes; sentences apart in the item are marked apart with an ellipsis."""
    parts = [hit.sentences[0]]
    for sentence in hit.sentences[1:]:
        joined = parts[-1] + sentence
        if hit.text and joined not in hit.text:
            parts.append(sentence)
        else:
            parts[-1] = joined
    return "“" + "……".join(parts) + "”"
