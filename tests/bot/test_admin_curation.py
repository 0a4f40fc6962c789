"""The admin API for curated answers over the real index: FAQ pairs answered by every worker
at once, feedback lists, confirmed answers; all behind the admin token."""

from __future__ import annotations

import pytest

from bot.service import get_service

TOKEN = "test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAQ = {"question": "学校的收费标准在哪里查？", "answer": "各校收费标准在学校公示栏和教育局网站公布。"}


@pytest.fixture
def app(make_app, bot_data):
    return make_app({"DATA": bot_data, "ADMIN_TOKEN": TOKEN})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.mark.parametrize("method, path", [
    ("GET", "/admin/faq"), ("POST", "/admin/faq"), ("DELETE", "/admin/faq/1"), ("GET", "/admin/feedback"),
    ("GET", "/admin/confirmed"), ("POST", "/admin/confirmed"), ("GET", "/admin/candidates?q=x"),
    ("GET", "/admin/curation"),
])
def test_every_endpoint_needs_the_token(client, method, path):
    response = client.open(path, method=method, json={}, headers={"Authorization": "Bearer wrong-token-wrong-token"})
    assert response.status_code == 401 and response.get_json()["ok"] is False


def test_not_mounted_without_a_token(make_app, bot_data):
    assert make_app({"DATA": bot_data}).test_client().get("/admin/faq").status_code == 404


def test_faq_added_is_answered_cited_and_removed(client, app):
    response = client.post("/admin/faq", json=FAQ, headers=AUTH)
    assert response.status_code == 201
    faq_id = response.get_json()["id"]
    assert [e["question"] for e in client.get("/admin/faq", headers=AUTH).get_json()["faq"]] == [FAQ["question"]]
    body = client.post("/api/ask", json={"question": "学校收费标准在哪里查"}).get_json()
    assert body["kind"] == "faq" and not body["abstained"]
    assert body["answer"].startswith(FAQ["answer"]) and "《常见问题》" in body["answer"]
    assert body["hits"][0]["kind"] == "faq" and body["hits"][0]["text"] == FAQ["answer"]
    assert client.delete(f"/admin/faq/{faq_id}", headers=AUTH).status_code == 200
    assert client.delete(f"/admin/faq/{faq_id}", headers=AUTH).status_code == 404
    assert client.post("/api/ask", json={"question": "学校收费标准在哪里查"}).get_json()["kind"] != "faq"


def test_a_faq_does_not_answer_another_question_on_its_subject(client):
    client.post("/admin/faq", json={"question": "幼儿园学费多少", "answer": "见各园公示。"}, headers=AUTH)
    assert client.post("/api/ask", json={"question": "高中学费多少"}).get_json()["kind"] != "faq"
    assert client.post("/api/ask", json={"question": "乡村教师有没有补贴？"}).get_json()["kind"] == "answer"


def test_another_worker_serves_a_new_faq_without_a_restart(make_app, bot_data, client):
    other = make_app({"DATA": bot_data, "ADMIN_TOKEN": TOKEN})  # a second process's app on the same data
    question = "学校收费标准在哪里查"
    assert other.test_client().post("/api/ask", json={"question": question}).get_json()["kind"] != "faq"
    client.post("/admin/faq", json=FAQ, headers=AUTH)
    assert other.test_client().post("/api/ask", json={"question": question}).get_json()["kind"] == "faq"


@pytest.mark.parametrize("body, status, words", [
    ({"question": "", "answer": "x"}, 400, "问题不能为空"),
    ({"question": "x", "answer": "y" * 1001}, 400, "回答最多"),
    ({"question": 3, "answer": "x"}, 400, "问题不能为空"),
    ([1], 400, "JSON"),
])
def test_bad_faq_is_refused_in_chinese(client, body, status, words):
    response = client.post("/admin/faq", json=body, headers=AUTH)
    assert response.status_code == status and words in response.get_json()["error"]
    assert client.get("/admin/faq", headers=AUTH).get_json()["faq"] == []


def test_feedback_lists_unhelpful_answers_and_worst_items(client):
    good = client.post("/api/ask", json={"question": "乡村教师有没有补贴？"}).get_json()
    bad = client.post("/api/ask", json={"question": "校园安全今年重点抓哪些工作？"}).get_json()
    client.post("/api/feedback", json={"answer_id": good["answer_id"], "helpful": True})
    client.post("/api/feedback", json={"answer_id": bad["answer_id"], "helpful": False})
    data = client.get("/admin/feedback", headers=AUTH).get_json()
    assert [r["question"] for r in data["unhelpful"]] == ["校园安全今年重点抓哪些工作？"]
    worst = data["worst_items"][0]
    assert worst["ref"] == bad["hits"][0]["ref"] and worst["ratio"] == 1.0 and worst["ratings"] == 1
    assert data["worst_items"][-1]["ratio"] == 0.0


def test_confirm_an_item_by_reference_or_by_document(client, app):
    hits = client.get("/admin/candidates", query_string={"q": "乡村教师补贴"}, headers=AUTH).get_json()["hits"]
    assert hits and hits[0]["ref"]
    logged = len(get_service(app).storage.questions())
    assert logged == 0  # looking for candidates is not a user's question
    response = client.post("/admin/confirmed", json={"question": "乡下老师有补助吗", "ref": hits[0]["ref"],
                                                     "source": "unanswered"}, headers=AUTH)
    assert response.status_code == 201 and response.get_json()["item"] == hits[0]["item"]
    again = client.post("/admin/confirmed", json={"question": "乡下老师有补助吗", "doc_id": hits[1]["doc_id"],
                                                  "item": hits[1]["item"]}, headers=AUTH)
    assert again.status_code == 201  # confirmed again: the newer item replaces the first
    [row] = client.get("/admin/confirmed", headers=AUTH).get_json()["confirmed"]
    assert (row["doc_id"], row["item"]) == (hits[1]["doc_id"], hits[1]["item"])
    assert client.post("/admin/confirmed", json={"question": "x", "ref": "ZZ999"}, headers=AUTH).status_code == 404
    assert client.post("/admin/confirmed", json={"question": "x", "ref": "HY1", "source": "?"},
                       headers=AUTH).status_code == 400
    assert client.delete(f"/admin/confirmed/{row['id']}", headers=AUTH).status_code == 200


def test_overview_has_every_list(client):
    client.post("/api/ask", json={"question": "明天天气怎么样"})
    data = client.get("/admin/curation", headers=AUTH).get_json()
    assert set(data) == {"faq", "unanswered", "unhelpful", "worst_items", "confirmed"}
    assert data["unanswered"][0] == {"question": "明天天气怎么样", "count": 1}
