"""Turn search results and work items into reply text that fits a channel.

Every reply kind (answer, abstain, item, toc, help, …) has a template registered in
:data:`TEMPLATES`; :func:`render` looks the kind up with an explicit fallback.
Templates only quote: sentences and item texts are copied verbatim from the index,
the frame around them is fixed text. :func:`fit` keeps a reply within a
:class:`~bot.domain.Limit` by dropping whole blocks, then whole sentences, and never
cuts a character. :func:`answer_json` is the ``ask --json`` / ``POST /api/ask`` shape.
Which hits and sentences an answer quotes is chosen by :mod:`bot.quotes` (its names are
importable from here too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from bot.domain import UNLIMITED, Answer, Citation, Limit, numbered
from bot.phrases import PHRASES, ZH, Phrases
from bot.quotes import (  # noqa: F401
    MIN_QUOTE_CHARS,
    NEARLY_AS_GOOD,
    PIECE_END,
    QUOTE_CHARS,
    answering_sentences,
    in_quotes,
    pick_hits,
    sentences,
    short_cite,
)
from index.domain import Document, Hit, ItemAddress, WorkItem, is_article
from index.search import SearchResult

if TYPE_CHECKING:
    from bot.faq import FaqMatch

#: What a channel says when the service itself failed (no index, an internal error): no 500 for users.
SORRY = "抱歉，暂时无法回答，请稍后再试。"
#: The document id and title of hits that come from the admins' FAQ (no library stem has an "@").
FAQ_DOC = "@faq"
FAQ_TITLE = "常见问题"


@dataclass(frozen=True)
class Draft:
    """Everything a template may need; each template reads only the fields it uses."""

    limit: Limit = UNLIMITED
    lang: str = "zh"
    result: SearchResult | None = None
    documents: tuple[Document, ...] = ()
    document: Document | None = None
    item: WorkItem | None = None
    ref: str = ""
    part: int = 1
    max_items: int = 3
    max_sentences: int = 3
    min_confidence: float = 0.0
    contact_text: str = ""
    intro: str = ""  # opening text: welcome greeting, answer lead-in, or instead of the abstain line
    faq: FaqMatch | None = None

    @property
    def phrases(self) -> Phrases:
        return PHRASES.get(self.lang, ZH)


Template = Callable[[Draft], Answer]
TEMPLATES: dict[str, Template] = {}
BLOCK_SEP = "\n\n"


def template(kind: str) -> Callable[[Template], Template]:
    """Register the template that renders replies of ``kind``."""

    def register(fn: Template) -> Template:
        TEMPLATES[kind] = fn
        return fn

    return register


def render(kind: str, draft: Draft) -> Answer:
    """The reply of ``kind`` for ``draft``; unknown kinds get the "unsupported" reply."""
    return TEMPLATES.get(kind, _unsupported)(draft)


# -- limits ---------------------------------------------------------------------------------


def fits(text: str, limit: Limit) -> bool:
    """Whether ``text`` is within ``limit`` (UTF-8 bytes and/or characters)."""
    if limit.max_bytes is not None and len(text.encode("utf-8")) > limit.max_bytes:
        return False
    return limit.max_chars is None or len(text) <= limit.max_chars


def fit(blocks: Sequence[str], limit: Limit, more_hint: str = "", *,
        sep: str = BLOCK_SEP) -> tuple[str, bool]:
    """Join ``blocks`` with ``sep``, keeping as many leading blocks as fit in ``limit``.

    When something is left out, ``more_hint`` (how to see the rest) is appended and
    counted against the limit too. A first block too long on its own is cut after its
    last whole sentence or line that fits, and only as a last resort between characters.

    :returns: the text and whether anything was left out.
    """
    whole = sep.join(blocks)
    if fits(whole, limit):
        return whole, False
    tail = f"{sep}{more_hint}" if more_hint else ""
    kept: list[str] = []
    for block in blocks:
        if not fits(sep.join([*kept, block]) + tail, limit):
            break
        kept.append(block)
    if not kept and blocks:
        head = _cut(blocks[0], limit, reserve=tail)
        kept = [head] if head else []
    if not kept:  # not even the hint's separator fits: the hint alone, trimmed
        return _prefix(more_hint, limit), True
    return sep.join(kept) + tail, True


def _cut(text: str, limit: Limit, *, reserve: str = "") -> str:
    """The longest prefix of ``text`` ending at a sentence or line end that fits with ``reserve``."""
    kept = ""
    for piece in PIECE_END.split(text):
        if not fits(kept + piece + reserve, limit):
            break
        kept += piece
    if kept:
        return kept.rstrip("\n")
    return _prefix(text, _shrink(limit, reserve))


def _prefix(text: str, limit: Limit) -> str:
    """The longest prefix of ``text`` within ``limit``; slicing str never splits a character."""
    if limit.max_chars is not None:
        text = text[: max(limit.max_chars, 0)]
    if limit.max_bytes is not None:
        text = text.encode("utf-8")[: max(limit.max_bytes, 0)].decode("utf-8", errors="ignore")
    return text


def _shrink(limit: Limit, reserve: str) -> Limit:
    """``limit`` minus the room ``reserve`` takes."""
    return Limit(
        max_bytes=None if limit.max_bytes is None else limit.max_bytes - len(reserve.encode("utf-8")),
        max_chars=None if limit.max_chars is None else limit.max_chars - len(reserve),
    )


# -- citations and items ----------------------------------------------------------------------


def cite_hit(hit: Hit) -> Citation:
    """The citation of a search hit."""
    return Citation.at(hit.address, hit.doc_title, hit.item_title)


def cite_item(doc: Document, item: WorkItem) -> Citation:
    """The citation of an item of ``doc``, under the section heading the document writes."""
    address = ItemAddress(doc.doc_id, doc.section_of(item).heading, item.number, item.locator, item.label)
    return Citation.at(address, doc.title, item.title)


def item_ref(locator: str, number: int) -> str:
    """What a user replies to see an item of the document being read: its locator when that is a
    plain number."""
    return locator if locator.isdigit() else str(number)


def hit_ref(hit: Hit) -> str:
    """What a user replies to see a found item: its library-wide reference (``YW11``), which opens
    the same item in any channel, with or without a session; else the number in its document."""
    return hit.ref or item_ref(hit.item_locator, hit.item_number)


def item_body(doc: Document, item: WorkItem) -> str:
    """The item's full text exactly as ``doc`` writes it, from its number (``12.``, ``第二条``) on."""
    line_start = doc.text.rfind("\n", 0, item.start) + 1
    before = doc.text[line_start:item.start]
    # the number sits just before the text on the same line: quote it along, separator and all
    if before.strip() == item.label.strip() and item.label:
        return doc.text[line_start:item.end].strip()
    return item.text.strip()


def item_parts(header: str, body: str, ref: str, limit: Limit, phrases: Phrases = ZH) -> list[str]:
    """Split ``body`` at sentence ends into parts that fit ``limit`` under ``header`` with a footer.

    The split is a pure function of its arguments, so ``12-2`` finds the same part 2
    that ``12`` announced on the same channel.
    """
    if fits(f"{header}\n{body}", limit):
        return [body]
    worst = _item_frame(header, "", ref, 999, 1000, phrases)  # widest header and footer
    budget = _shrink(limit, worst)
    parts: list[str] = []
    current = ""
    for piece in _pieces(body, budget):
        if current and not fits(current + piece, budget):
            parts.append(current)
            current = ""
        current += piece
    parts.append(current)
    return [p.strip("\n") for p in parts if p.strip()]


def _pieces(text: str, budget: Limit) -> list[str]:
    """Sentences of ``text``; one too long for ``budget`` is cut further between characters."""
    pieces: list[str] = []
    for piece in PIECE_END.split(text):
        while piece and not fits(piece, budget):
            head = _prefix(piece, budget) or piece[:1]  # a budget under one character still progresses
            pieces.append(head)
            piece = piece[len(head):]
        if piece:
            pieces.append(piece)
    return pieces


def _item_frame(header: str, body: str, ref: str, part: int, total: int, phrases: Phrases) -> str:
    if total == 1:
        return f"{header}\n{body}"
    lines = [f"{header}（{part}/{total}）", body]
    if part < total:
        lines.append(phrases.next_part.format(ref=ref, part=part + 1))
    return "\n".join(lines)


# -- templates --------------------------------------------------------------------------------


@template("answer")
def _answer(draft: Draft) -> Answer:
    """The best item quoted (the sentences that answer it, never just its title) over its one-line
    citation; items nearly as good as one-line pointers; sized for one phone screen."""
    ph = draft.phrases
    best, others = pick_hits(draft.result.hits, max_items=draft.max_items, min_confidence=draft.min_confidence)
    if best is None:
        return _abstain(draft)
    best = replace(best, sentences=answering_sentences(best, QUOTE_CHARS, draft.max_sentences))
    ref = hit_ref(best)
    head = [draft.intro] if draft.intro else []
    quote = f"{in_quotes(best)}\n{ph.cite_line.format(cite=short_cite(best, quoted=True), ref=ref)}"
    pointers = [ph.pointer.format(cite=short_cite(h), ref=hit_ref(h)) for h in others]
    # one line apart, no blank lines: a phone screen has no room for them
    text, truncated = fit([*head, quote, *pointers], draft.limit, ph.more.format(ref=ref), sep="\n")
    # hits: what the search found (for --json, eval and the web page); citations: what the text quotes
    found = tuple(draft.result.hits[: draft.max_items])
    return Answer(text, "answer", (cite_hit(best),), found, draft.result.confidence, False, truncated)


@template("faq")
def _faq(draft: Draft) -> Answer:
    """An admin's answer to a question close to the user's, cited as 《常见问题》 with its date."""
    entry, similarity = draft.faq.entry, draft.faq.similarity
    day = date.fromtimestamp(entry.created_at).isoformat()
    cite = draft.phrases.faq_cite.format(date=day)
    body, truncated = fit([entry.answer], _shrink(draft.limit, f"\n{cite}"))
    hit = Hit(doc_id=FAQ_DOC, doc_title=FAQ_TITLE, year=None, section=day, item_number=entry.id,
              item_title=entry.question, item_locator=str(entry.id), sentences=(entry.answer,),
              score=similarity, confidence=similarity, text=entry.answer)
    citation = Citation(FAQ_TITLE, day, entry.id, entry.question, str(entry.id), doc_id=FAQ_DOC)
    return Answer(f"{body}\n{cite}", "faq", (citation,), (hit,),
                  similarity, False, truncated)


@template("abstain")
def _abstain(draft: Draft) -> Answer:
    ph = draft.phrases
    hits = tuple(draft.result.hits[: draft.max_items]) if draft.result else ()
    lines = [draft.intro or _why_not(draft)]
    if hits:
        lines.append(ph.suggest)
        lines += [ph.suggest_line.format(item=numbered(h.item_label, h.item_number, h.item_title), ref=hit_ref(h))
                  for h in hits]
    else:
        lines.append(ph.no_suggest)
    text, truncated = fit(["\n".join(lines), draft.contact_text] if draft.contact_text else ["\n".join(lines)],
                          draft.limit)
    confidence = draft.result.confidence if draft.result else 0.0
    # no citations: suggestions are not sources of an answer; hits lets `回复 N` find their document
    return Answer(text, "abstain", (), hits, confidence, True, truncated)


def _why_not(draft: Draft) -> str:
    """The decline's first line: which fact the documents do not give, when that is the reason
    (幼儿园一个月收多少钱: the fee rules are there, an amount is not)."""
    ph = draft.phrases
    missing = [ph.fact_words[name] for name in (draft.result.unstated if draft.result else ())
               if name in ph.fact_words]
    return ph.abstain_unstated.format(what=ph.fact_sep.join(dict.fromkeys(missing))) if missing else ph.abstain


@template("item")
def _item(draft: Draft) -> Answer:
    ph = draft.phrases
    citation = cite_item(draft.document, draft.item)
    ref = item_ref(draft.item.locator, draft.item.number)
    parts = item_parts(citation.render(), item_body(draft.document, draft.item), ref, draft.limit, ph)
    if not 1 <= draft.part <= len(parts):
        return _fixed("not_found", ph.no_part.format(ref=ref, parts=len(parts)), draft)
    text = _item_frame(citation.render(), parts[draft.part - 1], ref, draft.part, len(parts), ph)
    text, cut = fit([text], draft.limit)  # safety net: the parts were sized to fit already
    return Answer(text, "item", (citation,), confidence=1.0, truncated=cut or draft.part < len(parts),
                  extra={"part": draft.part, "parts": len(parts)})


@template("toc")
def _toc(draft: Draft) -> Answer:
    ph = draft.phrases
    blocks: list[str] = []
    if len(draft.documents) > 1:
        blocks.append("\n".join([ph.toc_docs] + [
            f"{n}. 《{d.title}》" + ("（当前）" if d is draft.document else "")
            for n, d in enumerate(draft.documents, start=1)]))
    doc = draft.document
    blocks.append(f"《{doc.title}》")
    # each item numbered as its document writes it (第十二条, 【重点任务3】): typing the number opens it
    blocks += ["\n".join([s.heading] + [f"  {numbered(i.label, i.number, i.title)}" for i in s.items])
               for s in doc.sections]
    blocks.append(ph.toc_footer)
    text, truncated = fit(blocks, draft.limit, ph.toc_more)
    return Answer(text, "toc", truncated=truncated, extra={"doc_id": doc.doc_id})


@template("welcome")
def _welcome(draft: Draft) -> Answer:
    return _fixed("welcome", f"{draft.intro}\n\n{draft.phrases.help}" if draft.intro else draft.phrases.help,
                  draft)


@template("smalltalk")
def _smalltalk(draft: Draft) -> Answer:
    """A greeting or thanks: one friendly line (``intro`` names which), never a search."""
    return _fixed("smalltalk", getattr(draft.phrases, draft.intro or "greeting"), draft)


@template("feedback")
def _feedback(draft: Draft) -> Answer:
    """The reply to 有用 / 没用 (``intro`` names which phrase); an unhelpful answer gets the contact line."""
    lines = [getattr(draft.phrases, draft.intro)]
    if draft.intro == "rated_bad" and draft.contact_text:
        lines.append(draft.contact_text)
    return _fixed("feedback", "\n".join(lines), draft)


@template("not_found")
def _not_found(draft: Draft) -> Answer:
    # a law numbers articles (第十一条), a plan items (第3项)
    items = draft.document.items if draft.document else ()
    unit = "条" if items and is_article(items[0].label) else "项"
    return _fixed("not_found", draft.phrases.not_found.format(ref=draft.ref, unit=unit), draft)


def _register_fixed(kind: str) -> Template:
    """A template that says the phrase named like its kind (help, empty, unsupported)."""
    return template(kind)(lambda draft: _fixed(kind, getattr(draft.phrases, kind), draft))


_help, _empty, _unsupported = (_register_fixed(kind) for kind in ("help", "empty", "unsupported"))


def _fixed(kind: str, text: str, draft: Draft) -> Answer:
    text, truncated = fit(text.split("\n"), draft.limit, sep="\n")
    return Answer(text, kind, truncated=truncated)


# -- JSON ---------------------------------------------------------------------------------------


def answer_json(answer: Answer) -> dict:
    """The ``policybot ask --json`` / ``POST /api/ask`` shape of ``answer`` (see docs/CONTRACTS.md)."""
    data = {
        "answer": answer.text,
        "kind": answer.kind,
        "abstained": answer.abstained,
        "confidence": round(float(answer.confidence), 4),
        "hits": [{"kind": "faq" if hit.doc_id == FAQ_DOC else "item",
                  "document": hit.doc_title, "doc_id": hit.doc_id, "item": hit.item_number,
                  "item_title": hit.item_title, "section": hit.section, "ref": hit.ref,
                  "score": round(float(hit.score), 4), "sentences": list(hit.sentences), "text": hit.text}
                 for hit in answer.hits],
    }
    if answer.extra.get("answer_id"):  # what POST /api/feedback names (answers the service kept)
        data["answer_id"] = answer.extra["answer_id"]
    return data
