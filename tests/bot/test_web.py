"""The web channel against the real index: ``POST /api/ask`` and the chat page."""

from __future__ import annotations

import json
import re

import pytest

from bot.channels.web import MAX_QUESTION_CHARS, VISITOR_COOKIE
from bot.service import get_service
from tests.conftest import CORPUS

CORPUS_TEXT = "".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.*")))
TITLE = "衡阳市教育局2020年工作要点"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_ask_answers_with_verbatim_citations(client):
    response = client.post("/api/ask", json={"question": "乡村教师有没有补贴？"})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"answer", "kind", "abstained", "confidence", "hits", "answer_id"}
    assert body["abstained"] is False
    assert 0.0 < body["confidence"] <= 1.0
    assert body["hits"], body
    for hit in body["hits"]:
        assert set(hit) == {"kind", "document", "doc_id", "item", "item_title", "section", "ref", "score",
                            "sentences", "text"}
        assert hit["kind"] == "item"
        assert hit["document"] == TITLE
        for sentence in hit["sentences"]:
            assert _squash(sentence) in _squash(CORPUS_TEXT), sentence  # quoted, never paraphrased
    assert body["hits"][0]["item_title"] in body["answer"]


def test_ask_abstains_when_the_documents_do_not_answer(client):
    body = client.post("/api/ask", json={"question": "明天天气怎么样"}).get_json()
    assert body["abstained"] is True


def test_empty_question_is_a_normal_reply(client):
    response = client.post("/api/ask", json={"question": "   "})
    assert response.status_code == 200
    assert response.get_json()["answer"]


def test_ask_accepts_json_without_content_type(client):
    response = client.post("/api/ask", data=json.dumps({"question": "帮助"}), content_type="text/plain")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON object"),
        (b"not json", "JSON object"),
        (b'{"question": ', "JSON object"),
        (b'["question"]', "JSON object"),
        (b'"question"', "JSON object"),
        (b"{}", '"question" is missing'),
        (b'{"q": "hi"}', '"question" is missing'),
        (b'{"question": null}', '"question" is missing'),
        (b'{"question": 12}', "must be a string"),
        (b'{"question": ["a"]}', "must be a string"),
        (b'{"question": {"text": "a"}}', "must be a string"),
        (json.dumps({"question": "问" * (MAX_QUESTION_CHARS + 1)}).encode(), "at most 1000 characters"),
        (b"\xff\xfe", "JSON object"),
    ],
)
def test_bad_input_is_400_with_the_json_error_shape(client, body, message):
    response = client.post("/api/ask", data=body, content_type="application/json")
    assert response.status_code == 400
    payload = response.get_json()
    assert payload == {"ok": False, "error": payload["error"], "status": 400}
    assert message in payload["error"]


def test_longest_allowed_question_is_answered(client):
    response = client.post("/api/ask", json={"question": "班" * MAX_QUESTION_CHARS})
    assert response.status_code == 200


def test_bad_input_is_not_logged(client, app):
    client.post("/api/ask", data=b"{}", content_type="application/json")
    assert get_service(app).storage.questions() == []


def test_ask_without_index_is_503_without_server_paths(empty_app):
    response = empty_app.test_client().post("/api/ask", json={"question": "班额"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 503
    assert "/" not in body["error"]


def test_visitor_cookie_is_set_once(client, app):
    first = client.post("/api/ask", json={"question": "帮助"})
    cookie = first.headers.get("Set-Cookie", "")
    assert cookie.startswith(f"{VISITOR_COOKIE}=") and "HttpOnly" in cookie
    second = client.post("/api/ask", json={"question": "目录"})
    assert "Set-Cookie" not in second.headers
    hashes = {entry.user_hash for entry in get_service(app).storage.questions()}
    assert len(hashes) == 1  # the same visitor, so follow-ups find the previous question


def test_idempotency_key_returns_the_first_answer(client, app):
    headers = {"Idempotency-Key": "web-retry-1"}
    first = client.post("/api/ask", json={"question": "校园安全今年重点抓哪些工作？"}, headers=headers)
    again = client.post("/api/ask", json={"question": "校园安全今年重点抓哪些工作？"}, headers=headers)
    assert first.get_json() == again.get_json()
    assert len(get_service(app).storage.questions()) == 1
    too_long = client.post("/api/ask", json={"question": "x"}, headers={"Idempotency-Key": "k" * 201})
    assert too_long.status_code == 400


def test_chat_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    html = response.get_data(as_text=True)
    assert f"《{TITLE}》" in html and "<form" in html
    with client.get("/static/chat.js") as script:  # a file response: closed, or pytest warns
        assert script.status_code == 200
        js = script.get_data(as_text=True)
    assert "/api/ask" in js and "/api/feedback" in js and "localStorage" in js
    assert "textContent" in js and "innerHTML" not in js + html
    # No build step and no CDN: nothing is loaded from elsewhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_chat_page_without_index_says_how_to_build_one(empty_app):
    response = empty_app.test_client().get("/")
    assert response.status_code == 200
    assert "policybot index build" in response.get_data(as_text=True)


def test_an_idempotency_key_reused_with_another_question_gets_its_own_answer(client, app):
    headers = {"Idempotency-Key": "1"}
    first = client.post("/api/ask", json={"question": "班额有什么规定？"}, headers=headers).get_json()
    other = client.post("/api/ask", json={"question": "乡村教师有没有补贴？"}, headers=headers).get_json()
    assert first["answer"] != other["answer"]
    assert len(get_service(app).storage.questions()) == 2


@pytest.mark.parametrize("question", ["目录 ❶", "❶", "第❷条", "12-❸"])
def test_unusual_digits_never_cause_a_500(client, question):
    response = client.post("/api/ask", json={"question": question})
    assert response.status_code == 200
    assert response.get_json()["answer"]


# -- feedback, items and suggestions ---------------------------------------------------------------


def test_feedback_rates_the_answer_it_names(client, app):
    body = client.post("/api/ask", json={"question": "乡村教师有没有补贴？"}).get_json()
    response = client.post("/api/feedback", json={"answer_id": body["answer_id"], "helpful": False})
    assert response.status_code == 200 and response.get_json()["ok"] is True
    [row] = get_service(app).curation.unhelpful()
    assert row["question"] == "乡村教师有没有补贴？" and row["item"] == str(body["hits"][0]["item"])


@pytest.mark.parametrize("body, status", [
    ({"answer_id": "nope", "helpful": True}, 404),
    ({"answer_id": "x", "helpful": "yes"}, 400),
    ({"helpful": True}, 400),
    ([1, 2], 400),
])
def test_bad_feedback_is_refused_with_a_reason(client, body, status):
    response = client.post("/api/feedback", json=body)
    assert response.status_code == status
    assert response.get_json()["ok"] is False and response.get_json()["error"]


def test_item_api_opens_a_reference_without_logging_a_question(client, app):
    body = client.post("/api/ask", json={"question": "乡村教师有没有补贴？"}).get_json()
    ref = body["hits"][0]["ref"]
    logged = len(get_service(app).storage.questions())
    item = client.get(f"/api/item/{ref}").get_json()
    assert item["kind"] == "item" and item["ref"] == ref
    assert body["hits"][0]["text"].replace("\n", "") in item["answer"].replace("\n", "")
    assert len(get_service(app).storage.questions()) == logged
    assert client.get("/api/item/ZZ999").status_code == 404
    assert client.get("/api/item/not-a-ref").status_code == 404


def test_empty_chat_suggests_questions_many_users_asked(app):
    asked = "乡村教师有没有补贴？"
    for _visitor in range(2):
        app.test_client().post("/api/ask", json={"question": asked})  # a new visitor each time
    lonely = "校园安全今年重点抓哪些工作？"
    app.test_client().post("/api/ask", json={"question": lonely})
    html = app.test_client().get("/").get_data(as_text=True)
    assert f"<button type=\"button\">{asked}</button>" in html
    assert lonely not in html  # one user's question is never shown to others
