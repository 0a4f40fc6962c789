"""policybot serve starts whenever an intact index version exists, even if `current` is gone."""

from __future__ import annotations

import click
import pytest

from bot.serve import require_index
from index.build import build_index
from index.store import index_root
from tests.conftest import SEED


def test_serve_starts_on_a_kept_version_when_current_is_missing(tmp_path, embedding_cache):
    build_index([SEED], tmp_path, cache_dir=embedding_cache)
    (index_root(tmp_path) / "current").unlink()
    require_index(tmp_path)  # no exception: the workers will serve the newest intact version


def test_serve_refuses_an_empty_data_dir_with_instructions(tmp_path):
    with pytest.raises(click.ClickException, match="policybot index build"):
        require_index(tmp_path)
