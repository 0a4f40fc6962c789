"""The persisted index: publish, load, versions, mismatches, caches and half-written builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from index.build import build_index
from index.errors import BuildLocked, CorpusError, IndexMismatch, IndexNotFound
from index.search import open_searcher
from index.store import (
    build_lock,
    current_version,
    index_root,
    list_versions,
    load_index,
)
from tests.conftest import SEED

QUESTION = "今年幼儿园有啥目标？"


def _top_items(data_dir: Path, question: str = QUESTION) -> list[tuple[str, float]]:
    return [(h.item_locator, h.score) for h in open_searcher(data_dir).search(question, k=5).hits]


def test_build_publishes_a_complete_version(data_dir):
    version = current_version(data_dir)
    folder = index_root(data_dir) / version
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedder"] == {"name": manifest["embedder"]["name"], "dim": 384, "normalized": True}
    assert manifest["counts"]["items"] == 27
    assert manifest["documents"][0]["title"] == "衡阳市教育局2020年工作要点"
    assert {p.name for p in folder.iterdir()} >= {"manifest.json", "chunks.json", "documents.json",
                                                  "vectors.npy", "dense.faiss", "bm25"}


def test_save_load_round_trip_gives_same_results(data_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    assert _top_items(copy) == _top_items(data_dir)


SMALL_PLAN = """关于印发《某县教育局2021年工作要点》的通知
一、办好学前教育
1.扩大普惠资源。新建公办幼儿园3所。
2.规范办园行为。治理无证幼儿园。
二、加强教师队伍建设
3.提高教师待遇。落实乡村教师补贴。
"""


def test_rebuild_reuses_cached_embeddings(tmp_path):
    plan = tmp_path / "plan.txt"
    plan.write_text(SMALL_PLAN, encoding="utf-8")
    calls: list[tuple[str, int, int]] = []
    build_index([plan], tmp_path, progress=lambda *a: calls.append(a))
    first = max(total for stage, _, total in calls if stage == "embed")
    calls.clear()
    second_version = build_index([plan], tmp_path, progress=lambda *a: calls.append(a))
    assert first == 6  # six sentences; an item's vector is the mean of its sentences'
    assert max(total for stage, _, total in calls if stage == "embed") == 0
    assert current_version(tmp_path) == second_version
    assert len(list_versions(tmp_path)) == 2


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotFound, match="policybot index build"):
        open_searcher(tmp_path)


def test_index_from_another_embedder_is_refused(data_dir):
    with pytest.raises(IndexMismatch, match="POLICYBOT_EMBEDDER"):
        load_index(data_dir, embedder_name="st:some-other-model")


def test_half_written_version_is_never_loaded_and_is_cleaned(tmp_path, embedding_cache):
    version = build_index([SEED], tmp_path, cache_dir=embedding_cache)
    leftover = index_root(tmp_path) / ".tmp-20990101T000000-dead00"
    leftover.mkdir()
    (leftover / "chunks.json").write_text("[", encoding="utf-8")
    assert list_versions(tmp_path) == [version]
    assert open_searcher(tmp_path).version == version
    build_index([SEED], tmp_path, cache_dir=embedding_cache)
    assert not leftover.exists()


def test_second_build_is_refused_while_one_runs(tmp_path, embedding_cache):
    with build_lock(tmp_path), pytest.raises(BuildLocked, match="another index build"):
        build_index([SEED], tmp_path, cache_dir=embedding_cache)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("notes.txt", "今天天气很好，我们去公园散步。".encode(), "no sections or numbered items"),
        ("sheet.xls", b"\xd0\xcf\x11\xe0", "supported"),
    ],
)
def test_bad_document_publishes_nothing(tmp_path, embedding_cache, name, content, message):
    good = build_index([SEED], tmp_path, cache_dir=embedding_cache)
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        build_index([SEED, bad], tmp_path, cache_dir=embedding_cache)
    assert current_version(tmp_path) == good


def test_missing_path_names_it(tmp_path):
    with pytest.raises(CorpusError, match="nope.txt"):
        build_index([tmp_path / "nope.txt"], tmp_path)
