"""bot.singleflight: calls of one key at once share one computation, and its failure."""

from __future__ import annotations

import threading
import time

import pytest

from bot.singleflight import SingleFlight


def _at_once(flights: SingleFlight, key: str, compute, n: int = 5) -> list:
    barrier, outcomes = threading.Barrier(n), []

    def call() -> None:
        barrier.wait()
        try:
            outcomes.append(flights.do(key, compute))
        except Exception as exc:  # kept: every caller must see the one failure
            outcomes.append(exc)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes


def test_callers_at_once_share_one_computation():
    flights, calls = SingleFlight(), []

    def compute() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "answer"

    assert _at_once(flights, "k", compute) == ["answer"] * 5
    assert len(calls) == 1 and len(flights) == 0


def test_a_failure_reaches_every_waiting_caller_and_is_not_kept():
    flights = SingleFlight()

    def fail() -> str:
        time.sleep(0.2)
        raise ValueError("no index")

    outcomes = _at_once(flights, "k", fail)
    assert len(outcomes) == 5 and all(isinstance(o, ValueError) for o in outcomes)
    assert flights.do("k", lambda: "later") == "later"  # the next call computes again


def test_other_keys_do_not_wait():
    flights, started = SingleFlight(), threading.Event()
    release = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "slow"

    thread = threading.Thread(target=flights.do, args=("a", slow))
    thread.start()
    assert started.wait(5)
    assert flights.do("b", lambda: "fast") == "fast"
    release.set()
    thread.join(5)
    with pytest.raises(ZeroDivisionError):
        flights.do("c", lambda: 1 / 0)
