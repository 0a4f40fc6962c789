"""A published index version is served without a restart, and without a failed request."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from index.library import add_paths, build_library_index, remove_document
from index.store import current_version
from tests.bot.servers import START_TIMEOUT_S, Server
from tests.conftest import LAW, LAW_QUESTION, LAW_TITLE, SEED

# What each worker process logs (bot.serve's format: "[time] [pid] [level] logger: message").
BOOTED = re.compile(r"Booting worker with pid: (\d+)")
LOADED = re.compile(r"\[(\d+)\] \[INFO\] bot\.searchers: index (\S+) loaded from ")
SWITCHED = re.compile(r"\[(\d+)\] \[INFO\] bot\.searchers: index switched from (\S+) to (\S+)$")
#: An upper bound only (a passing run takes seconds), generous for a machine shared with other test runs.
SWAP_TIMEOUT_S = 60.0


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


def _pids(server: Server, pattern: re.Pattern[str], *groups: str) -> set[str]:
    """The worker pids whose log lines match ``pattern`` with the other groups equal to ``groups``."""
    found = (pattern.search(line) for line in list(server.log))
    return {m.group(1) for m in found if m and m.groups()[1:] == groups}


def _wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.slow
def test_hot_swap_under_concurrent_requests_has_no_errors(library):
    old = current_version(library)
    server = Server(library, workers=2)
    errors: list[str] = []
    answers: list[tuple[float, dict]] = []  # (when the request was sent, the answer)
    stop = threading.Event()
    try:
        url = server.url(START_TIMEOUT_S)
        # Each worker loads the index at boot and says so with its pid: wait for both.
        assert _wait_until(lambda: len(_pids(server, BOOTED)) == 2
                           and _pids(server, LOADED, old) == _pids(server, BOOTED), START_TIMEOUT_S), \
            "".join(server.log)
        workers = _pids(server, BOOTED)

        def client() -> None:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    answers.append((sent, _ask(url, LAW_QUESTION)))
                except Exception as exc:  # any failure is the finding
                    errors.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        assert _wait_until(lambda: len(answers) >= 4, SWAP_TIMEOUT_S)
        add_paths(library, [LAW])
        new = build_library_index(library)
        # A worker switches when a request of its own finds the new version published; four clients
        # keep both busy. The log line is per process, so it proves each worker switched, whichever
        # worker the kernel handed each request to.
        assert _wait_until(lambda: _pids(server, SWITCHED, old, new) == workers, SWAP_TIMEOUT_S), \
            f"not every worker of {sorted(workers)} logged the switch to {new}:\n" + "".join(server.log)
        switched = time.monotonic()
        assert _wait_until(lambda: sum(sent > switched for sent, _ in answers) >= 8, SWAP_TIMEOUT_S)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        stop.set()
        server.stop()
    assert errors == []
    # Served the old version first, then the new one, with no failed request in between; once
    # both workers had switched, every answer came from the new version.
    answers.sort(key=lambda pair: pair[0])
    assert not _cites_law(answers[0][1])
    after = [answer for sent, answer in answers if sent > switched]
    assert len(after) >= 8 and all(_cites_law(answer) for answer in after)
