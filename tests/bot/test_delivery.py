"""bot.delivery against the local fake API: one shared token, one refresh, budgeted answers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from wechatpy.exceptions import WeChatClientException

from bot.delivery import (
    AnswerRunner,
    OfficialAccountClient,
    OfficialAccountCourier,
    WorkClient,
    WorkCourier,
)
from tests.bot.fake_api import GONE_USER, FakeAPI


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        yield api


@pytest.fixture
def oa_client(fake: FakeAPI) -> Iterator[OfficialAccountClient]:
    client = OfficialAccountClient("wx-test-appid", "oa-secret", api_base=fake.base_wechat, timeout=5)
    yield client
    client.close()


@pytest.fixture
def work_client(fake: FakeAPI) -> Iterator[WorkClient]:
    client = WorkClient("ww-test-corp", "work-secret", api_base=fake.base_wecom, timeout=5)
    yield client
    client.close()


def test_two_deliveries_fetch_one_token(fake: FakeAPI, oa_client: OfficialAccountClient) -> None:
    courier = OfficialAccountCourier(oa_client)
    courier.deliver("openid-1", "第一条")
    courier.deliver("openid-2", "第二条 ]]> 原样")

    assert fake.token_fetches() == 1
    token_call = next(c for c in fake.calls if c.path.endswith("/token"))
    assert token_call.query == {"grant_type": "client_credential", "appid": "wx-test-appid",
                                "secret": "oa-secret"}
    sent = fake.sent("message/custom/send")
    assert [c.body for c in sent] == [
        {"touser": "openid-1", "msgtype": "text", "text": {"content": "第一条"}},
        {"touser": "openid-2", "msgtype": "text", "text": {"content": "第二条 ]]> 原样"}},
    ]
    assert {c.query["access_token"] for c in sent} == {"TOKEN-1"}


def test_concurrent_deliveries_share_one_token(fake: FakeAPI, oa_client: OfficialAccountClient) -> None:
    courier = OfficialAccountCourier(oa_client)
    threads = [threading.Thread(target=courier.deliver, args=(f"openid-{n}", f"答{n}")) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fake.token_fetches() == 1
    assert len(fake.sent("message/custom/send")) == 12


def test_stale_token_is_refreshed_once(fake: FakeAPI, oa_client: OfficialAccountClient) -> None:
    courier = OfficialAccountCourier(oa_client)
    courier.deliver("openid-1", "before")
    fake.expire_tokens()

    courier.deliver("openid-1", "after")

    assert fake.token_fetches() == 2
    tokens = [c.query["access_token"] for c in fake.sent("message/custom/send")]
    assert tokens == ["TOKEN-1", "TOKEN-1", "TOKEN-2"]  # refused once, retried with the new one


def test_other_api_errors_are_not_retried(fake: FakeAPI, oa_client: OfficialAccountClient) -> None:
    with pytest.raises(WeChatClientException) as caught:
        OfficialAccountCourier(oa_client).deliver(GONE_USER, "太晚了")
    assert caught.value.errcode == 45015
    assert fake.token_fetches() == 1
    assert len(fake.sent("message/custom/send")) == 1


def test_wecom_delivery_names_the_agent(fake: FakeAPI, work_client: WorkClient) -> None:
    WorkCourier(work_client, 1000002).deliver("zhangsan", "答复")

    token_call = next(c for c in fake.calls if c.path.endswith("/gettoken"))
    assert token_call.query == {"corpid": "ww-test-corp", "corpsecret": "work-secret"}
    (sent,) = fake.sent("message/send")
    assert sent.path == "/wecom/cgi-bin/message/send"
    assert sent.body["agentid"] == 1000002
    assert sent.body["touser"] == "zhangsan"
    assert sent.body["text"] == {"content": "答复"}


# AnswerRunner ----------------------------------------------------------------


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
        AnswerRunner(budget_s=-1)


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

    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        assert runner.answer("gone", slow("太晚了"), lambda t: courier.deliver(GONE_USER, t)) is None
        assert runner.answer("broken", slow("boom"), lambda t: courier.deliver("openid-1", t)) is None
        gate.set()
        runner.shutdown()
    messages = [r.getMessage() for r in caplog.records]
    assert any("gone could not be delivered" in m and "45015" in m for m in messages)
    assert any("broken failed; nothing delivered" in m for m in messages)
    assert len(fake.sent("message/custom/send")) == 1  # the gone user's attempt; nothing for "broken"
