"""A published index version is served without a restart, and without a failed request."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from index.library import add_paths, build_library_index, remove_document
from tests.bot.servers import START_TIMEOUT_S, Server
from tests.conftest import LAW, LAW_QUESTION, LAW_TITLE, SEED


@pytest.fixture
def library(tmp_path, embedding_cache) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(embedding_cache, data / "cache")  # the default cache place, so builds here are quick
    add_paths(data, [SEED])
    build_library_index(data)
    return data


def _ask(url: str, question: str) -> dict:
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(f"{url}/api/ask", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def _cites_law(answer: dict) -> bool:
    return any(hit["document"] == LAW_TITLE for hit in answer["hits"])


def test_app_serves_a_new_version_without_restart(make_app, library):
    client = make_app({"DATA": library}).test_client()
    assert not _cites_law(client.post("/api/ask", json={"question": LAW_QUESTION}).get_json())
    add_paths(library, [LAW])
    build_library_index(library)
    assert _served_within(client, 20, _cites_law), "the new index version was not served within 20 s"
    remove_document(library, "yiwujiaoyufa-2018")
    build_library_index(library)
    assert _served_within(client, 20, lambda answer: not _cites_law(answer)), "the removal was not served"


def _served_within(client, seconds: float, predicate) -> bool:
    """Ask until ``predicate(answer)`` holds; a worker loads a new version in the background."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate(client.post("/api/ask", json={"question": LAW_QUESTION}).get_json()):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_hot_swap_under_concurrent_requests_has_no_errors(library):
    server = Server(library, workers=2)
    errors: list[str] = []
    answers: list[dict] = []
    stop = threading.Event()
    try:
        url = server.url(START_TIMEOUT_S)
        _ask(url, "幼儿园")  # both workers loaded before the swap starts

        def client() -> None:
            while not stop.is_set():
                try:
                    answers.append(_ask(url, LAW_QUESTION))
                except Exception as exc:  # any failure is the finding
                    errors.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1)
        add_paths(library, [LAW])
        build_library_index(library)
        deadline = time.monotonic() + 20
        # Both workers switch independently; several answers in a row show they both have.
        while time.monotonic() < deadline and not all(_cites_law(_ask(url, LAW_QUESTION)) for _ in range(8)):
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        stop.set()
        server.stop()
    assert errors == []
    assert len(answers) > 20
    # Served the old version first, then the new one, with no failed request in between.
    assert not _cites_law(answers[0]) and any(_cites_law(a) for a in answers)
