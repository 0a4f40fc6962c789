"""index/store.py's side of several hosts: a version's files read on one host
(:func:`version_files`) and installed on another (:func:`install_version`), checked before they
are renamed into place, so a damaged copy never reaches the index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.integrity import MANIFEST, Damaged
from index.search import open_searcher
from index.store import (
    current_version,
    index_root,
    install_version,
    list_versions,
    publish,
    verify_version,
    version_files,
)

QUESTION = "今年幼儿园有啥目标？"


@pytest.fixture
def files(data_dir) -> dict[str, bytes]:
    return version_files(data_dir, current_version(data_dir))


def _hits(data_dir: Path) -> list[tuple[str, float]]:
    return [(h.item_locator, round(h.score, 6)) for h in open_searcher(data_dir).search(QUESTION, k=5).hits]


def _leftovers(data: Path) -> list[str]:
    return [p.name for p in index_root(data).iterdir() if p.name.startswith(".tmp")]


def test_a_version_installed_elsewhere_is_published_and_answers_the_same(data_dir, files, tmp_path):
    version = current_version(data_dir)
    assert MANIFEST in files and "vectors.npy" in files and any(name.startswith("bm25/") for name in files)
    install_version(tmp_path, version, files)
    assert current_version(tmp_path) == version and list_versions(tmp_path) == [version]
    assert verify_version(tmp_path, version)["version"] == version
    assert _hits(tmp_path) == _hits(data_dir)


def test_a_version_already_here_is_only_published(data_dir, files, tmp_path):
    version = current_version(data_dir)
    install_version(tmp_path, version, files)
    (index_root(tmp_path) / "current").unlink()
    install_version(tmp_path, version, {})  # a rollback to a kept version: nothing to fetch
    assert current_version(tmp_path) == version


def _installed_first(data_dir: Path, files: dict[str, bytes], data: Path) -> str:
    """``data`` serving the session's version under another name: what a bad install must leave alone."""
    version = current_version(data_dir)
    renamed = dict(files)
    manifest = json.loads(files[MANIFEST])
    renamed[MANIFEST] = json.dumps({**manifest, "version": "20000101T000000000000-aaaaaa"}).encode()
    install_version(data, "20000101T000000000000-aaaaaa", renamed)
    assert version > "20000101T000000000000-aaaaaa"
    return "20000101T000000000000-aaaaaa"


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: {**f, "vectors.npy": f["vectors.npy"][:-8]}, "vectors.npy does not match its checksum"),
    (lambda f: {k: v for k, v in f.items() if k != "dense.faiss"}, "lists other files"),
    (lambda f: {**f, "extra.bin": b"x"}, "lists other files"),
    (lambda f: {**f, "../escape": b"x"}, "a file outside the version"),
    (lambda f: {k: v for k, v in f.items() if k != MANIFEST}, "manifest.json is missing"),
    (lambda f: {**f, MANIFEST: b"{not json"}, "manifest.json cannot be read"),
])
def test_a_damaged_copy_is_refused_and_the_served_index_is_untouched(data_dir, files, tmp_path, change, message):
    served = _installed_first(data_dir, files, tmp_path)
    before = _hits(tmp_path)
    with pytest.raises(Damaged, match=message.replace(".", r"\.")):
        install_version(tmp_path, current_version(data_dir), change(files))
    assert current_version(tmp_path) == served and list_versions(tmp_path) == [served]
    assert _leftovers(tmp_path) == [] and not (tmp_path.parent / "escape").exists()
    assert _hits(tmp_path) == before


def test_files_of_another_version_are_refused(data_dir, files, tmp_path):
    with pytest.raises(Damaged, match="is not version '20990101T000000000000-bbbbbb'"):
        install_version(tmp_path, "20990101T000000000000-bbbbbb", files)
    assert current_version(tmp_path) is None and list_versions(tmp_path) == []


def test_a_damaged_local_copy_is_replaced(data_dir, files, tmp_path):
    version = current_version(data_dir)
    install_version(tmp_path, version, files)
    (index_root(tmp_path) / version / "chunks.json").write_text("[]", encoding="utf-8")
    publish(tmp_path, version)
    install_version(tmp_path, version, files)
    assert verify_version(tmp_path, version)["version"] == version
