"""bot.platforms against the local fake API: one token shared by the threads of a worker and by
the workers (wechatpy's session storage on the bot's database), one refresh of a stale one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from wechatpy.exceptions import WeChatClientException

from bot.platforms import OfficialAccountClient, OfficialAccountCourier, WorkClient, WorkCourier
from bot.storage import FILENAME, Storage
from tests.bot.fake_api import GONE_USER, FakeAPI


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


# The token shared by the workers --------------------------------------------------------------


def _workers(fake: FakeAPI, path: Path, n: int) -> list[tuple[Storage, OfficialAccountCourier]]:
    """``n`` "workers": each with its own connection to one database file and its own client."""
    workers = []
    for _ in range(n):
        storage = Storage(path / FILENAME)
        client = OfficialAccountClient("wx-test-appid", "oa-secret", api_base=fake.base_wechat, timeout=5,
                                       session=storage.tokens)
        workers.append((storage, OfficialAccountCourier(client)))
    return workers


def _close(workers: list[tuple[Storage, OfficialAccountCourier]]) -> None:
    for storage, courier in workers:
        courier.close()
        storage.close()


def test_two_workers_fetch_one_token(fake: FakeAPI, tmp_path: Path) -> None:
    workers = _workers(fake, tmp_path, 2)
    try:
        barrier = threading.Barrier(8)

        def deliver(courier: OfficialAccountCourier, n: int) -> None:
            barrier.wait()
            courier.deliver(f"openid-{n}", f"答{n}")

        threads = [threading.Thread(target=deliver, args=(workers[n % 2][1], n)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert fake.token_fetches() == 1
        sent = fake.sent("message/custom/send")
        assert len(sent) == 8 and {c.query["access_token"] for c in sent} == {"TOKEN-1"}
    finally:
        _close(workers)


def test_a_stale_token_is_refreshed_once_for_all_workers(fake: FakeAPI, tmp_path: Path) -> None:
    workers = _workers(fake, tmp_path, 2)
    try:
        workers[0][1].deliver("openid-1", "before")
        fake.expire_tokens()
        workers[0][1].deliver("openid-1", "after")  # refused once, refreshed, sent again
        workers[1][1].deliver("openid-2", "其他进程")  # the other worker uses the new token at once
        assert fake.token_fetches() == 2
        tokens = [c.query["access_token"] for c in fake.sent("message/custom/send")]
        assert tokens == ["TOKEN-1", "TOKEN-1", "TOKEN-2", "TOKEN-2"]
    finally:
        _close(workers)


def test_the_token_outlives_the_worker_that_fetched_it(fake: FakeAPI, tmp_path: Path) -> None:
    first = _workers(fake, tmp_path, 1)
    first[0][1].deliver("openid-1", "一")
    _close(first)  # a restarted worker (or a new one) finds the token in the database
    second = _workers(fake, tmp_path, 1)
    try:
        second[0][1].deliver("openid-2", "二")
        assert fake.token_fetches() == 1
    finally:
        _close(second)
