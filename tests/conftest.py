"""Fixtures shared by every test tier: a real index built from the shipped corpus, and the
test documents in ``tests/fixtures/corpus/`` (the seed plan in three formats, excerpts of laws
and of a five-year plan; ``SOURCES.md`` there says where each came from)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
FIXTURES = ROOT / "tests" / "fixtures" / "corpus"
SEED = FIXTURES / "hengyang-2020-work-plan.txt"
SEED_DOCX = FIXTURES / "hengyang-2020-work-plan.docx"
SEED_PDF = FIXTURES / "hengyang-2020-work-plan.pdf"
#: 中华人民共和国义务教育法, 第一章–第二章 (第一条–第十四条; 第十一条: 年满六周岁 入学)
LAW = FIXTURES / "yiwujiaoyufa-2018.md"
LAW_TITLE = "中华人民共和国义务教育法"
LAW_QUESTION = "义务教育法规定适龄儿童几岁入学"


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache for the session: each test still builds its own index, but the
    real model embeds each sentence once rather than once per test."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, embedding_cache) -> Path:
    """A data dir holding a real index of corpus/, built once with the default (offline) embedder."""
    from index.build import build_index

    path = tmp_path_factory.mktemp("policybot-data")
    build_index([CORPUS], path, cache_dir=embedding_cache)
    return path


@pytest.fixture(scope="session")
def searcher(data_dir):
    from index.search import open_searcher

    return open_searcher(data_dir)


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch, tmp_path):
    # Never let a test read or write the developer's ./var by accident.
    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path / "var"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every tier must really run: a skip (no Chromium, no st extra) fails instead of hiding."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where make test installs everything: {report.longrepr}"
