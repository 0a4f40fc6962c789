"""index.domain: one item address for chunks and hits, and documents that survive their JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict

from index.domain import ItemAddress, document_from_dict, document_sha256
from index.structure import parse_file
from tests.conftest import LAW, SEED


def test_a_hit_has_the_address_of_its_item_chunk(searcher) -> None:
    hit = searcher.search("今年幼儿园有啥目标？").hits[0]
    item_chunks = [c for c in searcher.stored.chunks if c.kind == "item" and c.address == hit.address]
    assert len(item_chunks) == 1
    assert hit.address.key == (hit.doc_id, hit.item_locator)
    assert isinstance(hit.address, ItemAddress) and hit.address.section == hit.section


def test_a_sentence_chunk_shares_its_items_address(searcher) -> None:
    chunks = searcher.stored.chunks
    item = next(c for c in chunks if c.kind == "item")
    sentences = [c for c in chunks if c.kind == "sentence" and c.chunk_id.startswith(item.chunk_id + ".s")]
    assert sentences and {s.address for s in sentences} == {item.address}


def test_a_document_survives_its_json_form() -> None:
    for path in (SEED, LAW):
        doc = parse_file(path)
        again = document_from_dict(json.loads(json.dumps(asdict(doc), ensure_ascii=False)))
        assert again == doc
        assert document_sha256(again) == document_sha256(doc)
