"""Greetings and thanks get one friendly line, never an abstention with random suggestions."""

from __future__ import annotations

import pytest

from bot.service import get_service


@pytest.mark.parametrize(("text", "starts"), [
    ("你好", "您好！"), ("您好！", "您好！"), ("在吗", "您好！"), ("谢谢", "不客气！"), ("好的", "不客气！"),
    ("hi", "Hello!"), ("Thank you", "You're welcome!"),
])
def test_smalltalk_is_answered_in_one_line_and_never_logged_as_unanswered(app, client, text, starts):
    body = client.post("/api/ask", json={"question": text}).get_json()
    assert body["kind"] == "smalltalk" and body["abstained"] is False and body["hits"] == []
    assert body["answer"].startswith(starts) and "\n" not in body["answer"]
    assert get_service(app).storage.unanswered() == []


def test_a_greeting_with_a_question_is_a_question(client):
    body = client.post("/api/ask", json={"question": "你好，今年幼儿园有啥目标？"}).get_json()
    assert body["kind"] == "answer" and body["hits"][0]["item"] == 12
