"""A build killed with SIGKILL at any point leaves the served version intact; two builds never overlap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.errors import BuildLocked
from index.library import add_paths, build_library_index
from index.search import open_searcher
from index.store import build_lock, current_version, index_root
from tests.conftest import LAW, ROOT, SEED

BUILD = "import sys; from pathlib import Path; from index.library import build_library_index; " \
        "build_library_index(Path(sys.argv[1]))"


def _start_build(data: Path, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BUILD, str(data)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def _wait_for(predicate, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("kill_after", ["start", "tmp-dir", "embedding"])
def test_sigkill_mid_build_keeps_the_served_version(tmp_path, embedding_cache, kill_after):
    add_paths(tmp_path, [SEED])
    served = build_library_index(tmp_path, cache_dir=embedding_cache)
    before = [(h.item_locator, h.score) for h in open_searcher(tmp_path).search("幼儿园").hits]
    # New text: the killed build (its own, empty cache) has real embedding work to do; the
    # in-process build below shares the session's cache with the other tests that add LAW.
    add_paths(tmp_path, [LAW])
    build = _start_build(tmp_path)
    if kill_after != "start":
        assert _wait_for(lambda: list(index_root(tmp_path).glob(".tmp-*"))), "build never started writing"
    if kill_after == "embedding":
        cache = tmp_path / "cache" / "embeddings.sqlite3"
        assert _wait_for(lambda: cache.exists() and cache.stat().st_size > 0)
    os.kill(build.pid, signal.SIGKILL)
    build.wait(timeout=10)
    assert build.returncode == -signal.SIGKILL
    assert current_version(tmp_path) == served
    assert [(h.item_locator, h.score) for h in open_searcher(tmp_path).search("幼儿园").hits] == before
    # the next build cleans the leftovers and publishes
    version = build_library_index(tmp_path, cache_dir=embedding_cache)
    assert current_version(tmp_path) == version != served
    assert not list(index_root(tmp_path).glob(".tmp-*"))


def test_a_second_concurrent_build_is_refused_clearly(tmp_path, embedding_cache):
    add_paths(tmp_path, [SEED])
    with build_lock(tmp_path):
        build = _start_build(tmp_path, stderr=subprocess.PIPE)
        _, err = build.communicate(timeout=60)
    assert build.returncode == 1
    assert b"another index build is running" in err
    with build_lock(tmp_path), pytest.raises(BuildLocked):
        build_library_index(tmp_path, cache_dir=embedding_cache)
