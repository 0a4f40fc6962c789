"""Two bot hosts on one PostgreSQL: two ``policybot serve`` processes, each with its own data folder
(the same index: the session's, of the repository's corpus/), ``POLICYBOT_DATABASE_URL`` shared,
WeChat pushes signed and encrypted with wechatpy's real crypto, over loopback HTTP."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator

import pytest

from bot.storage.pg import PgStorage
from tests.bot.platforms import (
    AES_KEY,
    APPID,
    CLASS_SIZE,
    TOKEN,
    WeChatServer,
    assert_quotes_class_size_answer,
    next_msg_id,
)
from tests.bot.servers import START_TIMEOUT_S, Server

pytestmark = pytest.mark.slow
PLATFORM = WeChatServer()
PLAN_QUESTION = "今年幼儿园有啥目标？"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, data_dir, shared_url) -> Iterator[list[str]]:
    """The base URLs of two hosts: separate data folders, one database."""
    env = {"POLICYBOT_DATABASE_URL": shared_url, "POLICYBOT_WECHAT_TOKEN": TOKEN,
           "POLICYBOT_WECHAT_AES_KEY": AES_KEY, "POLICYBOT_WECHAT_APPID": APPID, "POLICYBOT_ANSWER_BUDGET_S": "30"}
    servers = []
    try:
        for name in ("host-a", "host-b"):
            data = tmp_path_factory.mktemp(name)
            (data / "index").symlink_to(data_dir / "index", target_is_directory=True)
            servers.append(Server(data, workers=1, env=env))
        yield [server.url(START_TIMEOUT_S) for server in servers]
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert server.process.returncode == 0, "".join(server.log)
        assert "Traceback" not in "".join(server.log), "".join(server.log)


def _post(base: str, fields: dict, push=None) -> dict:
    """POST a WeChat push (encrypted, "safe mode") and open the reply."""
    push = push or PLATFORM.push(fields, mode="aes")
    query = "&".join(f"{k}={v}" for k, v in push.query.items())
    request = urllib.request.Request(f"{base}/wechat?{query}", data=push.body,
                                     headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return PLATFORM.open_reply(response.read())


def _questions(url: str, *users: str) -> list:
    """The log rows of ``users``' questions, oldest first."""
    storage = PgStorage(url)
    try:
        hashes = {storage.hash(user) for user in users}
        return [entry for entry in storage.questions() if entry.user_hash in hashes]
    finally:
        storage.close()


def test_one_message_sent_to_both_hosts_is_answered_and_logged_once(hosts, shared_url):
    fields = PLATFORM.text(CLASS_SIZE, msg_id=next_msg_id(), user="oParentAtBothHosts00000001")
    push = PLATFORM.push(fields, mode="aes")  # the platform's retry is the same request, to any host
    barrier, replies = threading.Barrier(2), {}

    def send(base: str) -> None:
        barrier.wait()
        replies[base] = _post(base, fields, push)

    threads = [threading.Thread(target=send, args=(base,)) for base in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    first, second = (replies[base] for base in hosts)
    assert first["Content"] == second["Content"]
    assert_quotes_class_size_answer(first["Content"])
    (logged,) = _questions(shared_url, "oParentAtBothHosts00000001")
    assert logged.question == CLASS_SIZE and not logged.abstained


def test_a_follow_up_reaching_the_other_host_keeps_its_context(hosts, shared_url):
    host_a, host_b = hosts
    parent, stranger = "oParentOnHostA000000000001", "oStrangerOnHostB0000000001"
    _post(host_a, PLATFORM.text(PLAN_QUESTION, user=parent))
    more = _post(host_b, PLATFORM.text("还有呢", user=parent))
    unknown_reply = _post(host_b, PLATFORM.text("还有呢", user=stranger))
    first, follow_up = _questions(shared_url, parent)
    (unknown,) = _questions(shared_url, stranger)
    assert follow_up.kind == "answer" and not follow_up.abstained  # more on the kindergarten question
    assert follow_up.top_item != first.top_item  # items not shown before
    assert unknown.kind == "empty"  # nothing to go on for a user with no earlier question
    assert more["Content"] != unknown_reply["Content"]
