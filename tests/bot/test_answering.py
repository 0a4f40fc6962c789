"""bot.answering: answers within the budget, late ones handed to a courier (against the local
fake API), retries of one message sharing one computation."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bot.answering import AnswerRunner
from bot.platforms import OfficialAccountClient, OfficialAccountCourier
from tests.bot.fake_api import GONE_USER, FakeAPI


@pytest.fixture
def runner() -> Iterator[AnswerRunner]:
    run = AnswerRunner(budget_s=0.5, workers=4)
    yield run
    run.shutdown()


def test_answer_within_budget_is_returned(runner: AnswerRunner) -> None:
    late: list[str] = []
    assert runner.answer("k1", lambda: "快", late.append) == "快"
    assert late == []


def test_late_answer_goes_to_the_courier(runner: AnswerRunner) -> None:
    release = threading.Event()
    delivered = threading.Event()
    late: list[str] = []

    def slow() -> str:
        release.wait(5)
        return "慢"

    def deliver(text: str) -> None:
        late.append(text)
        delivered.set()

    assert runner.answer("k2", slow, deliver) is None
    release.set()
    assert delivered.wait(5)
    assert late == ["慢"]
    # A platform retry after the hand-over gets no passive reply: the courier has it.
    assert runner.answer("k2", lambda: "again", deliver) is None
    assert late == ["慢"]


def test_retries_share_one_computation(runner: AnswerRunner) -> None:
    calls: list[int] = []
    gate = threading.Event()

    def compute() -> str:
        calls.append(1)
        gate.wait(5)
        return "一次"

    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(runner.answer("k3", compute, print)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # let all three join the computation before it finishes
    gate.set()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert results == ["一次"] * 3


def test_a_failure_within_budget_reaches_the_caller(runner: AnswerRunner) -> None:
    def broken() -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        runner.answer("k4", broken, print)


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        AnswerRunner(budget_s=-1, workers=1)


def test_late_failures_are_logged_not_raised(fake: FakeAPI, oa_client: OfficialAccountClient, caplog) -> None:
    runner = AnswerRunner(budget_s=0.0, workers=2)
    courier = OfficialAccountCourier(oa_client)
    gate = threading.Event()

    def slow(text: str) -> Callable[[], str]:
        def compute() -> str:
            gate.wait(5)
            if text == "boom":
                raise RuntimeError("the dialog broke")
            return text
        return compute

    with caplog.at_level(logging.INFO, logger="bot.answering"):
        assert runner.answer("gone", slow("太晚了"), lambda t: courier.deliver(GONE_USER, t)) is None
        assert runner.answer("broken", slow("boom"), lambda t: courier.deliver("openid-1", t)) is None
        gate.set()
        runner.shutdown()
    messages = [r.getMessage() for r in caplog.records]
    assert any("gone could not be delivered" in m and "45015" in m for m in messages)
    assert any("broken failed; nothing delivered" in m for m in messages)
    assert len(fake.sent("message/custom/send")) == 1  # the gone user's attempt; nothing for "broken"
