"""/wecom, tested by playing the WeCom server (tests/bot/platforms.py): encrypted URL
check and pushes with real crypto, replies decrypted and read, late answers through
the fake ``message/send``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto

from bot.channels import wecom
from bot.channels._xml import MAX_BODY_BYTES
from bot.config import Settings
from bot.domain import WECHAT_LIMIT
from bot.errors import ConfigError
from bot.service import get_service
from tests.bot.platforms import (
    AES_KEY,
    AGENT_ID,
    CLASS_SIZE,
    CORP_ID,
    TOKEN,
    USER,
    WeComServer,
    assert_quotes_class_size_answer,
    build_xml,
    next_msg_id,
)

platform = WeComServer()

# wechatpy's published WeCom vector (tests/test_crypto.py): its echostr has '+' in it.
VECTOR = {"token": "123456", "key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "corp": "wx49f0ab532d5d035a"}
VECTOR_URL_CHECK = {
    "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "timestamp": "1411443780",
    "nonce": "437374425",
    "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
}


@pytest.fixture
def make_wecom(make_app, bot_data, fake) -> Callable[..., Flask]:
    """``make_wecom(**settings)``: the app over the real index with /wecom mounted."""
    return lambda **settings: make_app({"DATA": bot_data, "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY,
                                        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": str(AGENT_ID),
                                        "WECOM_SECRET": "w-secret", "API_BASE_WECOM": fake.base_wecom, **settings})


@pytest.fixture
def client(make_wecom) -> FlaskClient:
    return make_wecom().test_client()


def post(client, push):
    return client.post("/wecom", query_string=push.query, data=push.body, content_type="text/xml")


# -- URL check ------------------------------------------------------------------------------------


def test_url_check_returns_the_decrypted_echostr(client) -> None:
    response = client.get("/wecom", query_string=platform.url_check("wecom-echo-42"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "wecom-echo-42"


def test_url_check_restores_plus_signs_that_arrived_as_spaces(make_wecom) -> None:
    client = make_wecom(WECOM_TOKEN=VECTOR["token"], WECOM_AES_KEY=VECTOR["key"],
                        WECOM_CORP_ID=VECTOR["corp"]).test_client()
    expected = WorkCrypto(VECTOR["token"], VECTOR["key"], VECTOR["corp"]).check_signature(
        *(VECTOR_URL_CHECK[k] for k in ("msg_signature", "timestamp", "nonce", "echostr")))
    # Unescaped on purpose: the query parser turns each '+' into a space.
    raw = "&".join(f"{k}={v}" for k, v in VECTOR_URL_CHECK.items())
    assert " " in client.get("/wecom", query_string=raw).request.args["echostr"]

    response = client.get("/wecom", query_string=raw)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == expected


@pytest.mark.parametrize("change", [
    {"msg_signature": "0" * 40}, {"nonce": "other"}, {"echostr": "bm90IGEgY2lwaGVy"}, {"msg_signature": ""},
])
def test_url_check_refuses_bad_signatures(client, change) -> None:
    assert client.get("/wecom", query_string={**platform.url_check(), **change}).status_code == 403


def test_url_check_for_another_corp_is_403(client, caplog) -> None:
    other = WeComServer(app_id="wwffffffffffffffff")
    with caplog.at_level(logging.WARNING):
        assert client.get("/wecom", query_string=other.url_check()).status_code == 403
    assert any("corp id mismatch" in r.getMessage() for r in caplog.records)


# -- pushes ---------------------------------------------------------------------------------------


def test_text_is_answered_encrypted_with_the_agent_id(client) -> None:
    response = post(client, platform.push(platform.text(CLASS_SIZE)))

    assert response.status_code == 200
    assert "<Encrypt>" in response.get_data(as_text=True)
    reply = platform.open_reply(response.data)
    assert reply["AgentID"] == str(AGENT_ID)
    assert reply["ToUserName"] == USER and reply["FromUserName"] == CORP_ID
    assert_quotes_class_size_answer(reply["Content"])
    assert len(reply["Content"].encode("utf-8")) <= WECHAT_LIMIT.max_bytes


def test_subscribe_gets_the_welcome(make_wecom) -> None:
    app = make_wecom()
    reply = platform.open_reply(post(app.test_client(), platform.push(platform.event("subscribe"))).data)
    assert reply["Content"] == get_service(app).welcome(WECHAT_LIMIT).text


@pytest.mark.parametrize("event", ["enter_agent", "unsubscribe", "click", "view", "batch_job_result"])
def test_other_events_get_an_empty_200(client, event) -> None:
    response = post(client, platform.push(platform.event(event, EventKey="k")))
    assert response.status_code == 200
    assert response.data == b""  # empty, and never encrypted


def test_image_gets_the_polite_request_for_text(client) -> None:
    reply = platform.open_reply(post(client, platform.push(platform.media("image"))).data)
    assert "文字" in reply["Content"]


def test_a_retry_is_answered_once_and_logged_once(make_wecom) -> None:
    app = make_wecom()
    client = app.test_client()
    fields = platform.text(CLASS_SIZE, msg_id=next_msg_id())
    first = platform.open_reply(post(client, platform.push(fields)).data)["Content"]
    second = platform.open_reply(post(client, platform.push(fields)).data)["Content"]
    assert first == second
    assert len([q for q in get_service(app).storage.questions() if q.question == CLASS_SIZE]) == 1


def test_late_answers_go_through_message_send_with_one_token(make_wecom, fake) -> None:
    client = make_wecom(ANSWER_BUDGET_S=0.001).test_client()
    for text in (CLASS_SIZE, "今年幼儿园有什么目标？"):
        response = post(client, platform.push(platform.text(text)))
        assert response.status_code == 200 and response.data == b""

    assert fake.wait_for(lambda api: len(api.sent("message/send")) == 2)
    assert fake.token_fetches() == 1
    sent = fake.sent("message/send")
    assert {c.body["agentid"] for c in sent} == {AGENT_ID}
    assert {c.body["touser"] for c in sent} == {USER}
    assert_quotes_class_size_answer(next(c.body["text"]["content"] for c in sent
                                         if "大班额" in c.body["text"]["content"]))


# -- bad input ------------------------------------------------------------------------------------


def _with(push, **query):
    push.query.update(query)
    return push


def _sealed_inner(xml: str):
    """A correctly signed and encrypted push whose decrypted XML is ``xml``."""
    return platform.push(xml)


def _outer(body: str):
    push = platform.push(platform.text("hi"))
    push.body = body.encode()
    return push


CASES = {
    "bad msg_signature": (lambda: _with(platform.push(platform.text("hi")), msg_signature="0" * 40), 403),
    "no msg_signature": (lambda: _with(platform.push(platform.text("hi")), msg_signature=""), 403),
    "stale timestamp": (lambda: platform.push(platform.text("hi"), timestamp=str(int(time.time()) - 301)),
                        403),
    "another corp's key id": (lambda: WeComServer(app_id="wwffffffffffffffff", account=CORP_ID).push(
        platform.text("hi")), 403),
    "addressed to another corp": (lambda: WeComServer(account="wwffffffffffffffff").push(
        platform.text("hi")), 403),
    "another agent": (lambda: WeComServer(agent_id=999).push(platform.text("hi")), 403),
    "malformed inner xml": (lambda: _sealed_inner("<xml><MsgType>text"), 400),
    "doctype inner xml": (lambda: _sealed_inner('<!DOCTYPE x [<!ENTITY e "y">]><xml>&e;</xml>'), 400),
    "malformed outer xml": (lambda: _outer("<xml><Encrypt>"), 400),
    "outer xml without Encrypt": (lambda: _outer(build_xml({"ToUserName": CORP_ID})), 400),
    "body over 64 KiB": (lambda: platform.push(platform.text("长" * MAX_BODY_BYTES)), 413),
}


@pytest.mark.parametrize(("make_push", "status"), CASES.values(), ids=CASES.keys())
def test_bad_pushes(client, make_push, status) -> None:
    assert post(client, make_push()).status_code == status


def test_corp_id_mismatch_is_logged(client, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert post(client, CASES["another corp's key id"][0]()).status_code == 403
    assert any("corp id mismatch" in r.getMessage() for r in caplog.records)


def test_a_replayed_nonce_with_another_body_is_403(client) -> None:
    genuine = platform.push(platform.text("今年幼儿园有什么目标？"))
    assert post(client, genuine).status_code == 200
    forged = platform.push(platform.text("别的"), timestamp=genuine.query["timestamp"],
                           nonce=genuine.query["nonce"])
    assert post(client, forged).status_code == 403


def test_a_correctly_signed_push_from_2014_is_403(make_wecom) -> None:
    client = make_wecom(WECOM_TOKEN=VECTOR["token"], WECOM_AES_KEY=VECTOR["key"],
                        WECOM_CORP_ID=VECTOR["corp"]).test_client()
    server = WeComServer(token=VECTOR["token"], aes_key=VECTOR["key"], app_id=VECTOR["corp"],
                         account=VECTOR["corp"])
    assert post(client, server.push(server.text("hi"))).status_code == 200
    assert post(client, server.push(server.text("hi"), timestamp="1411525903")).status_code == 403


# -- settings -------------------------------------------------------------------------------------

GOOD = {"WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": "1000002", "WECOM_SECRET": "s"}


@pytest.mark.parametrize(("change", "variable"), [
    ({"WECOM_AES_KEY": None}, "POLICYBOT_WECOM_AES_KEY"),
    ({"WECOM_AES_KEY": AES_KEY[:42]}, "POLICYBOT_WECOM_AES_KEY"),
    ({"WECOM_CORP_ID": ""}, "POLICYBOT_WECOM_CORP_ID"),
    ({"WECOM_AGENT_ID": "abc"}, "POLICYBOT_WECOM_AGENT_ID"),
    ({"WECOM_AGENT_ID": None}, "POLICYBOT_WECOM_AGENT_ID"),
    ({"WECOM_TOKEN": "t"}, "POLICYBOT_WECOM_TOKEN"),
])
def test_validate_names_the_variable(change, variable) -> None:
    with pytest.raises(ConfigError, match=variable):
        wecom.validate(Settings.from_mapping({**GOOD, **change}))


def test_validate_accepts_good_settings() -> None:
    wecom.validate(Settings.from_mapping(GOOD))
    assert wecom.configured(Settings.from_mapping(GOOD)) and not wecom.configured(Settings.from_mapping({}))
