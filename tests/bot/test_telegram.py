"""/telegram, tested by playing Telegram: updates POSTed with and without the secret
token header, replies read from the webhook's sendMessage JSON, late answers from the
fake Bot API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.channels import telegram
from bot.channels._xml import MAX_BODY_BYTES
from bot.config import Settings
from bot.domain import TELEGRAM_LIMIT
from bot.errors import ConfigError
from bot.service import get_service
from tests.bot.platforms import CLASS_SIZE, assert_quotes_class_size_answer

SECRET = "policybot-test_SECRET-1"
BOT_TOKEN = "123456:TEST-token_abc"
CHAT_ID = 424242
HEADER = {telegram.SECRET_HEADER: SECRET}
_update_ids = iter(range(900_000_000, 999_999_999))


def message(text: str | None = None, *, update_id: int | None = None, **extra: Any) -> dict:
    """An Update with a private-chat message, as Telegram sends it."""
    msg: dict[str, Any] = {"message_id": 7, "date": 1_700_000_000,
                           "chat": {"id": CHAT_ID, "type": "private", "first_name": "测试"},
                           "from": {"id": CHAT_ID, "is_bot": False, "first_name": "测试"}, **extra}
    if text is not None:
        msg["text"] = text
    return {"update_id": update_id or next(_update_ids), "message": msg}


@pytest.fixture
def make_telegram(make_app, bot_data, fake) -> Callable[..., Flask]:
    """``make_telegram(**settings)``: the app over the real index with /telegram mounted."""
    return lambda **settings: make_app({"DATA": bot_data, "TELEGRAM_SECRET": SECRET, **settings})


@pytest.fixture
def client(make_telegram) -> FlaskClient:
    return make_telegram().test_client()


def send(client, update: dict | bytes | str, headers: dict | None = HEADER):
    body = update if isinstance(update, bytes | str) else json.dumps(update, ensure_ascii=False)
    return client.post("/telegram", data=body, headers=headers or {}, content_type="application/json")


def test_a_question_is_answered_inline(client) -> None:
    response = send(client, message(CLASS_SIZE))

    assert response.status_code == 200
    reply = response.get_json()
    assert set(reply) == {"method", "chat_id", "text"}  # plain text: no parse_mode to escape for
    assert reply["method"] == "sendMessage" and reply["chat_id"] == CHAT_ID
    assert_quotes_class_size_answer(reply["text"])
    assert len(reply["text"]) <= TELEGRAM_LIMIT.max_chars


@pytest.mark.parametrize("headers", [None, {telegram.SECRET_HEADER: ""},
                                     {telegram.SECRET_HEADER: SECRET.upper()},
                                     {telegram.SECRET_HEADER: SECRET + "x"},
                                     {"X-Telegram-Bot-Api-Secret": SECRET}])
def test_without_the_secret_it_is_403(client, headers) -> None:
    assert send(client, message(CLASS_SIZE), headers=headers).status_code == 403


def test_start_gets_the_welcome_and_help_gets_help(make_telegram) -> None:
    app = make_telegram()
    client = app.test_client()
    welcome = send(client, message("/start")).get_json()["text"]
    assert welcome == get_service(app).welcome(TELEGRAM_LIMIT).text
    help_text = send(client, message("/help")).get_json()["text"]
    assert "帮助" in help_text and help_text in welcome
    assert send(client, message("/help@policybot_bot")).get_json()["text"] == help_text


def test_a_redelivered_update_is_answered_once_and_logged_once(make_telegram) -> None:
    app = make_telegram()
    client = app.test_client()
    update = message(CLASS_SIZE, update_id=123_456_789)
    first, second = send(client, update).get_json(), send(client, update).get_json()
    assert first == second
    assert len([q for q in get_service(app).storage.questions() if q.question == CLASS_SIZE]) == 1


def test_without_an_index_the_user_gets_a_polite_line(make_app) -> None:
    app = make_app({"TELEGRAM_SECRET": SECRET})  # no index published in this data dir
    reply = send(app.test_client(), message(CLASS_SIZE)).get_json()
    assert reply["text"] == telegram.SORRY


UNHANDLED = {
    "edited message": {"update_id": 1, "edited_message": message("改过")["message"]},
    "channel post": {"update_id": 2, "channel_post": {"message_id": 1, "chat": {"id": -100, "type": "channel"},
                                                      "date": 1, "text": "公告"}},
    "callback query": {"update_id": 3, "callback_query": {"id": "q", "from": {"id": 1}, "data": "x"}},
    "sticker": message(sticker={"file_id": "f", "emoji": "👍"}),
    "photo": message(photo=[{"file_id": "p", "width": 1, "height": 1}], caption="看图"),
    "member update": {"update_id": 4, "my_chat_member": {"chat": {"id": 1}}},
    "only update_id": {"update_id": 5},
}


@pytest.mark.parametrize("update", UNHANDLED.values(), ids=UNHANDLED.keys())
def test_unhandled_updates_get_an_empty_200(client, update) -> None:
    response = send(client, update)
    assert response.status_code == 200
    assert response.data == b""


BAD = {
    "not json": (b"{not json", 400),
    "not utf-8": ("{}".encode("utf-16"), 400),
    "json array": (b"[1, 2]", 400),
    "no update_id": (b'{"message": {}}', 400),
    "string update_id": (b'{"update_id": "1"}', 400),
    "boolean update_id": (b'{"update_id": true}', 400),
    "message without chat": (json.dumps({"update_id": 9, "message": {"text": "hi"}}).encode(), 400),
    "body over 64 KiB": (json.dumps(message("长" * MAX_BODY_BYTES)).encode(), 413),
}


@pytest.mark.parametrize(("body", "status"), BAD.values(), ids=BAD.keys())
def test_bad_updates(client, body, status) -> None:
    assert send(client, body).status_code == status


def test_late_answers_go_through_send_message(make_telegram, fake) -> None:
    client = make_telegram(TELEGRAM_TOKEN=BOT_TOKEN, API_BASE_TELEGRAM=fake.base_telegram,
                           ANSWER_BUDGET_S=0.001).test_client()
    response = send(client, message(CLASS_SIZE))
    assert response.status_code == 200 and response.data == b""

    assert fake.wait_for(lambda api: len(api.sent("/sendMessage")) == 1)
    (call,) = fake.sent("/sendMessage")
    assert call.path == f"/telegram/bot{BOT_TOKEN}/sendMessage"
    assert call.body["chat_id"] == CHAT_ID
    assert_quotes_class_size_answer(call.body["text"])


@pytest.mark.parametrize(("settings", "variable"), [
    ({"TELEGRAM_TOKEN": BOT_TOKEN}, "POLICYBOT_TELEGRAM_SECRET"),
    ({"TELEGRAM_SECRET": "has space"}, "POLICYBOT_TELEGRAM_SECRET"),
    ({"TELEGRAM_SECRET": "x" * 257}, "POLICYBOT_TELEGRAM_SECRET"),
    ({"TELEGRAM_SECRET": SECRET, "TELEGRAM_TOKEN": "not-a-token"}, "POLICYBOT_TELEGRAM_TOKEN"),
])
def test_validate_names_the_variable(settings, variable) -> None:
    with pytest.raises(ConfigError, match=variable):
        telegram.validate(Settings.from_mapping(settings))


def test_a_token_without_a_secret_stops_the_start(make_app) -> None:
    with pytest.raises(ConfigError, match="POLICYBOT_TELEGRAM_SECRET"):
        make_app({"TELEGRAM_TOKEN": BOT_TOKEN})


def test_configured() -> None:
    telegram.validate(Settings.from_mapping({"TELEGRAM_SECRET": SECRET}))
    assert telegram.configured(Settings.from_mapping({"TELEGRAM_SECRET": SECRET}))
    assert not telegram.configured(Settings.from_mapping({}))
