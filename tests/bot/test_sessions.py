"""Follow-up memory shared by all workers (SQLite), as the server uses it."""

from __future__ import annotations

import json

from bot.sessions import SharedSessionMemory
from bot.storage import FILENAME, Storage


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_two_workers_share_a_users_context(tmp_path):
    one, two = Storage(tmp_path / FILENAME), Storage(tmp_path / FILENAME)
    try:
        first, second = SharedSessionMemory(one), SharedSessionMemory(two)
        first.update(("wechat", "openid-1"), topic="今年幼儿园有啥目标？", shown=(("plan", "12"),))
        session = second.get(("wechat", "openid-1"))
        assert session.topic == "今年幼儿园有啥目标？" and session.shown == (("plan", "12"),)
        assert second.get(("wechat", "openid-2")) is None
        assert second.get(("telegram", "openid-1")) is None
    finally:
        one.close()
        two.close()


def test_sessions_expire_and_raw_ids_are_not_stored(tmp_path):
    storage, clock = Storage(tmp_path / FILENAME), Clock()
    try:
        memory = SharedSessionMemory(storage, ttl_s=300, clock=clock)
        memory.update(("wechat", "oRAWopenid123"), topic="班额")
        clock.now += 299
        assert memory.get(("wechat", "oRAWopenid123")).topic == "班额"
        clock.now += 2
        assert memory.get(("wechat", "oRAWopenid123")) is None
        memory.update(("wechat", "someone-else"), topic="x")
        assert len(memory) == 1  # the expired one is not counted (deleted as rows are written, once a minute)
    finally:
        storage.close()
    assert b"oRAWopenid123" not in (tmp_path / FILENAME).read_bytes()


def _client(app, visitor: str):
    client = app.test_client()
    client.set_cookie("policybot_visitor", visitor)
    return client


def test_follow_up_reaching_another_worker_keeps_its_topic(make_app, bot_data):
    worker_a, worker_b = make_app({"DATA": bot_data}), make_app({"DATA": bot_data})
    _client(worker_a, "visitor-0123456789abcdef").post("/api/ask", json={"question": "今年幼儿园有啥目标？"})
    more = _client(worker_b, "visitor-0123456789abcdef").post("/api/ask", json={"question": "还有呢"}).get_json()
    stranger = _client(worker_b, "visitor-fedcba9876543210").post("/api/ask", json={"question": "还有呢"}).get_json()
    assert more["hits"] and not more["abstained"]  # more on the kindergarten question, from the other worker
    assert not stranger["hits"]  # nothing to go on for a user with no earlier question


def test_a_session_survives_the_database_whole():
    from dataclasses import fields

    from bot.sessions import Session, _dump, _load

    session = Session(topic="幼儿园", focus="高中", shown=(("plan", "3"), ("law", "11")), answered=("plan", "3"),
                      doc_id="plan", at=12.5)
    assert {f.name for f in fields(Session)} == set(json.loads(_dump(session)))  # no field forgotten
    assert _load(_dump(session)) == session


def test_deferred_changes_are_seen_at_once_and_written_with_the_caller(tmp_path):
    storage = Storage(tmp_path / FILENAME)
    try:
        memory = SharedSessionMemory(storage)
        key = ("wechat", "oUser")
        with memory.deferred() as writes:
            memory.update(key, topic="幼儿园")
            memory.update(key, focus="高中")
            assert memory.get(key).topic == "幼儿园" and memory.get(key).focus == "高中"
            assert SharedSessionMemory(storage).get(key) is None  # not written yet
        storage.write_together(writes())
        assert SharedSessionMemory(storage).get(key).focus == "高中"
    finally:
        storage.close()
