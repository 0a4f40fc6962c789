"""/wechat, tested by playing the WeChat server (tests/bot/platforms.py): signed
plaintext, compatible and safe-mode pushes with real crypto, replies opened and read.
The protocol pieces (bot/channels/_xml.py) are tested on their own first."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
import xmltodict
from flask import Flask
from flask.testing import FlaskClient

from bot import answering, compose
from bot.channels import wechat
from bot.channels._xml import (
    MAX_BODY_BYTES,
    CDataField,
    Rejected,
    ReplayGuard,
    check_fresh,
    clip_utf8,
    load_xml,
    require_fields,
)
from bot.config import Settings
from bot.domain import WECHAT_LIMIT
from bot.errors import ConfigError
from bot.service import get_service
from bot.storage import Storage
from tests.bot.platforms import (
    ACCOUNT,
    AES_KEY,
    APPID,
    CLASS_SIZE,
    TOKEN,
    USER,
    Push,
    WeChatServer,
    assert_quotes_class_size_answer,
    build_xml,
    next_msg_id,
    sign,
)

# -- protocol pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "reason"), [
    (b"<xml><MsgType>text</MsgType>", "malformed"),
    (b"not xml at all", "malformed"),
    (b"", "malformed"),
    (b"<xml>just text</xml>", "no <xml> root"),
    (b"<other><a>1</a></other>", "no <xml> root"),
    ("<xml><a>é</a></xml>".encode("latin-1"), "not UTF-8"),
    (b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><a>&a;</a></xml>', "DOCTYPE"),
    (b'<?xml version="1.0"?><!doctype xml SYSTEM "file:///etc/passwd"><xml/>', "DOCTYPE"),
    (b"<xml><!ENTITY x SYSTEM 'http://example.invalid/'><a/></xml>", "DOCTYPE"),
], ids=["unclosed", "garbage", "empty", "text-root", "other-root", "latin-1", "entity", "doctype",
        "entity-only"])
def test_load_xml_refuses(body: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        load_xml(body)
    assert caught.value.status == 400
    assert reason in caught.value.reason


def test_doctype_typed_by_a_user_is_just_text() -> None:
    fields = load_xml(build_xml({"MsgType": "text", "Content": "<!DOCTYPE html> 是什么？"}).encode())
    assert fields["Content"] == "<!DOCTYPE html> 是什么？"


@pytest.mark.parametrize(("xml", "reason"), [
    ("<xml><MsgType>text</MsgType><MsgType>image</MsgType><CreateTime>1</CreateTime></xml>", "MsgType"),
    ("<xml><MsgType><a>text</a></MsgType><CreateTime>1</CreateTime></xml>", "MsgType"),
    ("<xml><MsgType>text</MsgType><CreateTime>soon</CreateTime></xml>", "CreateTime"),
    ("<xml><CreateTime>1</CreateTime></xml>", "missing <MsgType>"),
])
def test_fields_must_be_flat(xml: str, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        require_fields(load_xml(xml.encode()), text=("MsgType",), numbers=("CreateTime",))


@pytest.mark.parametrize("skew", [-301, 301, 10**6])
def test_stale_or_future_timestamps_are_refused(skew: int) -> None:
    now = 1_700_000_000
    with pytest.raises(Rejected) as caught:
        check_fresh(str(now + skew), now=now)
    assert caught.value.status == 403


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1.5"])
def test_timestamp_must_be_a_number(timestamp: str) -> None:
    with pytest.raises(Rejected):
        check_fresh(timestamp)


def test_timestamp_within_window_passes() -> None:
    check_fresh(str(int(time.time()) - 299))


def test_replay_guard_allows_a_retry_and_refuses_another_body(tmp_path) -> None:
    storage = Storage(tmp_path / "s.sqlite3")
    first_worker = ReplayGuard(channel="wechat", memos=storage)
    other_worker = ReplayGuard(channel="wechat", memos=storage)
    first_worker.check("1700000000", "n1", b"<xml>a</xml>")
    first_worker.check("1700000000", "n1", b"<xml>a</xml>")  # the platform's retry: same body
    other_worker.check("1700000000", "n1", b"<xml>a</xml>")
    with pytest.raises(Rejected) as caught:
        other_worker.check("1700000000", "n1", b"<xml>forged</xml>")
    assert caught.value.status == 403
    with pytest.raises(Rejected):
        first_worker.check("1700000000", "n1", b"<xml>forged</xml>")
    storage.close()


def test_replay_guard_is_bounded() -> None:
    guard = ReplayGuard(channel="wechat", size=2)
    for n in range(5):
        guard.check("1", f"n{n}", b"x")
    assert len(guard._seen) == 2


@pytest.mark.parametrize("content", ["a]]>b", "]]>", "x]]]]>y", "<![CDATA[evil]]>", "控制\x01字符"])
def test_reply_survives_cdata_terminators(content: str) -> None:
    reply = wechat.TextReply(source="gh_a", target="o_b", content=content)
    parsed = xmltodict.parse(reply.render())["xml"]
    assert parsed["Content"] == content.replace("\x01", "")
    assert parsed["MsgType"] == "text"


def test_cdata_field_is_wechatpys_string_field() -> None:
    assert CDataField("Content").to_xml("普通") == "<Content><![CDATA[普通]]></Content>"


def test_clip_utf8_keeps_whole_characters() -> None:
    text = "班额" * 2000
    clipped = clip_utf8(text, 2048)
    assert len(clipped.encode("utf-8")) <= 2048
    assert text.startswith(clipped)
    assert clip_utf8("短", 2048) == "短"


# -- settings -------------------------------------------------------------------------------------


GOOD = {"WECHAT_TOKEN": TOKEN, "WECHAT_AES_KEY": AES_KEY, "WECHAT_APPID": APPID, "WECHAT_SECRET": "s"}


@pytest.mark.parametrize(("change", "variable"), [
    ({"WECHAT_TOKEN": "x"}, "POLICYBOT_WECHAT_TOKEN"),
    ({"WECHAT_TOKEN": "has space"}, "POLICYBOT_WECHAT_TOKEN"),
    ({"WECHAT_AES_KEY": AES_KEY[:-1]}, "POLICYBOT_WECHAT_AES_KEY"),
    ({"WECHAT_AES_KEY": AES_KEY + "H"}, "POLICYBOT_WECHAT_AES_KEY"),
    ({"WECHAT_AES_KEY": "!" * 43}, "POLICYBOT_WECHAT_AES_KEY"),
    ({"WECHAT_APPID": None}, "POLICYBOT_WECHAT_APPID"),
    ({"API_BASE_WECHAT": "ftp://x"}, "POLICYBOT_API_BASE_WECHAT"),
])
def test_validate_names_the_variable(change: dict, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        wechat.validate(Settings.from_mapping({**GOOD, **change}))


def test_validate_accepts_good_settings() -> None:
    wechat.validate(Settings.from_mapping(GOOD))
    wechat.validate(Settings.from_mapping({"WECHAT_TOKEN": 123456}))  # an env value JSON-decoded to a number
    assert wechat.configured(Settings.from_mapping(GOOD))
    assert not wechat.configured(Settings.from_mapping({}))


# -- the webhook, against the real index ----------------------------------------------------------

platform = WeChatServer()


def post(client, push):
    return client.post("/wechat", query_string=push.query, data=push.body, content_type="text/xml")


def reply_text(response) -> str | None:
    fields = platform.open_reply(response.data)
    return None if fields is None else fields["Content"]


@pytest.fixture
def make_wechat(make_app, bot_data, fake) -> Callable[..., Flask]:
    """``make_wechat(**settings)``: the app over the real index with /wechat mounted (plaintext mode)."""
    return lambda **settings: make_app({"DATA": bot_data, "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID,
                                        "WECHAT_SECRET": "oa-secret", "API_BASE_WECHAT": fake.base_wechat,
                                        **settings})


@pytest.fixture
def plain(make_wechat) -> FlaskClient:
    return make_wechat().test_client()


@pytest.fixture
def safe(make_wechat) -> FlaskClient:
    return make_wechat(WECHAT_AES_KEY=AES_KEY).test_client()


def test_url_check_echoes_echostr(plain) -> None:
    response = plain.get("/wechat", query_string=platform.url_check("echo-42"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "echo-42"


@pytest.mark.parametrize("query", [
    {},
    {"echostr": "x"},
    {**platform.url_check(), "signature": "0" * 40},
    {**platform.url_check(), "nonce": "other"},
])
def test_url_check_with_a_bad_signature_is_403(plain, query) -> None:
    assert plain.get("/wechat", query_string=query).status_code == 403


@pytest.mark.parametrize("mode", ["plain", "compat", "aes"])
def test_text_question_is_answered_with_quotes_and_citation(make_wechat, mode) -> None:
    client = make_wechat(**({} if mode == "plain" else {"WECHAT_AES_KEY": AES_KEY})).test_client()
    response = post(client, platform.push(platform.text(CLASS_SIZE), mode=mode))

    assert response.status_code == 200
    encrypted = "<Encrypt>" in response.get_data(as_text=True)
    assert encrypted == (mode != "plain")
    reply = platform.open_reply(response.data)
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == USER and reply["FromUserName"] == ACCOUNT
    assert_quotes_class_size_answer(reply["Content"])
    assert len(reply["Content"].encode("utf-8")) <= WECHAT_LIMIT.max_bytes


def test_long_replies_stay_within_2048_bytes(plain) -> None:
    for text in ("目录", "14", "教育"):
        content = reply_text(post(plain, platform.push(platform.text(text))))
        assert content and len(content.encode("utf-8")) <= WECHAT_LIMIT.max_bytes


def test_voice_with_recognition_is_a_question(plain) -> None:
    content = reply_text(post(plain, platform.push(platform.voice(CLASS_SIZE))))
    assert_quotes_class_size_answer(content)


@pytest.mark.parametrize("fields", [
    platform.voice(None), platform.voice(""), platform.media("image"), platform.media("location"),
    platform.media("link"), platform.media("video"), platform.media("shortvideo"),
    platform.media("miniprogrampage"),
], ids=["voice-unrecognised", "voice-empty", "image", "location", "link", "video", "shortvideo",
        "unknown-type"])
def test_non_text_messages_get_a_polite_request_for_text(plain, fields) -> None:
    unsupported = compose.render("unsupported", compose.Draft(limit=WECHAT_LIMIT)).text
    assert reply_text(post(plain, platform.push(fields))) == unsupported


@pytest.mark.parametrize("mode", ["plain", "aes"])
def test_subscribe_gets_welcome_and_help(make_wechat, mode) -> None:
    app = make_wechat(**({} if mode == "plain" else {"WECHAT_AES_KEY": AES_KEY}))
    content = reply_text(post(app.test_client(), platform.push(platform.event("subscribe"), mode=mode)))
    assert content == get_service(app).welcome(WECHAT_LIMIT).text
    assert "帮助" in content


@pytest.mark.parametrize("event", ["unsubscribe", "CLICK", "VIEW", "LOCATION", "SCAN",
                                   "TEMPLATESENDJOBFINISH"])
@pytest.mark.parametrize("mode", ["plain", "aes"])
def test_other_events_get_plain_success(make_wechat, event, mode) -> None:
    client = make_wechat(**({} if mode == "plain" else {"WECHAT_AES_KEY": AES_KEY})).test_client()
    response = post(client, platform.push(platform.event(event, EventKey="k"), mode=mode))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "success"  # never encrypted


def test_without_an_index_the_user_gets_a_polite_line(make_app) -> None:
    app = make_app({"WECHAT_TOKEN": TOKEN})  # no index published in this data dir
    response = post(app.test_client(), platform.push(platform.text(CLASS_SIZE)))
    assert response.status_code == 200
    assert reply_text(response) == wechat.SORRY


def test_a_retried_msg_id_is_answered_once_and_logged_once(make_wechat) -> None:
    app = make_wechat()
    client = app.test_client()
    fields = platform.text(CLASS_SIZE, msg_id=next_msg_id())
    first = reply_text(post(client, platform.push(fields)))
    second = reply_text(post(client, platform.push(fields)))  # WeChat's retry: new nonce, same message

    assert first == second
    rows = [q for q in get_service(app).storage.questions() if q.question == CLASS_SIZE]
    assert len(rows) == 1


def test_an_answered_message_decides_its_nonce_in_the_claims_write(make_wechat, monkeypatch) -> None:
    """The signed pair is claimed with the message (one write): no second write settles it again."""
    app = make_wechat()
    storage = get_service(app).storage
    separate: list[tuple] = []
    claim_nonce = storage.claim_nonce
    monkeypatch.setattr(storage, "claim_nonce", lambda *key: separate.append(key) or claim_nonce(*key))
    reply = reply_text(post(app.test_client(), platform.push(platform.text(CLASS_SIZE, msg_id=next_msg_id()))))

    assert reply and separate == []
    event = post(app.test_client(), platform.push(platform.event("subscribe")))  # no question: settled apart
    assert event.status_code == 200 and len(separate) == 1


def test_late_answers_are_delivered_with_one_token(make_wechat, fake) -> None:
    app = make_wechat(ANSWER_BUDGET_S=0.001)
    client = app.test_client()
    late = platform.text(CLASS_SIZE)
    for fields in (late, platform.text("今年幼儿园有什么目标？")):
        response = post(client, platform.push(fields))
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "success"

    assert fake.wait_for(lambda api: len(api.sent("message/custom/send")) == 2)
    assert fake.token_fetches() == 1
    sent = {c.body["text"]["content"] for c in fake.sent("message/custom/send")}
    assert {c.body["touser"] for c in fake.sent("message/custom/send")} == {USER}
    assert_quotes_class_size_answer(next(t for t in sent if "大班额" in t))
    # A retry of a message whose answer went to the courier gets no second copy, and is not asked again.
    assert post(client, platform.push(late)).get_data(as_text=True) == "success"
    answering.shutdown(app)  # returns once every answer still running, and its delivery, has finished
    assert len(fake.sent("message/custom/send")) == 2
    assert [q.question for q in get_service(app).storage.questions()].count(CLASS_SIZE) == 1


# -- bad input: each rule, as the platform (or an attacker) would send it ----------------------------


def _signed(body: bytes | str, **query: str):
    push = platform.push(body if isinstance(body, bytes) else body.encode())
    push.query.update(query)
    return push


def _stale():
    return platform.push(platform.text("hi"), timestamp=str(int(time.time()) - 301))


def _future():
    return platform.push(platform.text("hi"), timestamp=str(int(time.time()) + 301))


PLAIN_CASES = {
    "bad signature": (lambda: _signed(build_xml(platform.text("hi")), signature="0" * 40), 403),
    "no signature": (lambda: _signed(build_xml(platform.text("hi")), signature=""), 403),
    "stale timestamp": (_stale, 403),
    "future timestamp": (_future, 403),
    "malformed xml": (lambda: _signed("<xml><MsgType>text</MsgType>"), 400),
    "not xml": (lambda: _signed("hello"), 400),
    "doctype": (lambda: _signed('<!DOCTYPE xml [<!ENTITY a "x">]><xml><MsgType>&a;</MsgType></xml>'), 400),
    "external entity": (lambda: _signed('<!DOCTYPE x SYSTEM "file:///etc/passwd"><xml/>'), 400),
    "no MsgType": (lambda: _signed(build_xml({"FromUserName": "u", "ToUserName": "g",
                                              "CreateTime": 1})), 400),
    "two MsgTypes": (lambda: _signed(build_xml(platform.text("hi")).replace(
        "</xml>", "<MsgType>image</MsgType></xml>")), 400),
    "bad MsgId": (lambda: _signed(build_xml({**platform.text("hi"), "MsgId": "abc"})), 400),
    "event without Event": (lambda: _signed(build_xml(
        {k: v for k, v in platform.event("x").items() if k != "Event"})), 400),
    "nested Event": (lambda: _signed(build_xml(platform.event("x")).replace(
        "<![CDATA[x]]>", "<a>subscribe</a>")), 400),
    "body over 64 KiB": (lambda: _signed(build_xml(platform.text("长" * MAX_BODY_BYTES))), 413),
    "encrypted push, no key": (lambda: platform.push(platform.text("hi"), mode="aes"), 403),
}


@pytest.mark.parametrize(("make_push", "status"), PLAIN_CASES.values(), ids=PLAIN_CASES.keys())
def test_bad_plaintext_pushes(plain, make_push, status) -> None:
    assert post(plain, make_push()).status_code == status


def test_a_replayed_nonce_with_another_body_is_403(plain) -> None:
    genuine = platform.push(platform.text("今年幼儿园有什么目标？"))
    assert post(plain, genuine).status_code == 200
    forged = platform.push(platform.text("别的内容"), timestamp=genuine.query["timestamp"],
                           nonce=genuine.query["nonce"])
    assert forged.query == genuine.query
    assert post(plain, forged).status_code == 403
    assert post(plain, genuine).status_code == 200  # the platform's own retry still passes


def _aes_with(**overrides: str):
    push = platform.push(platform.text("hi"), mode="aes")
    push.query.update(overrides)
    return push


def _other_appid():
    return WeChatServer(app_id="wxffffffffffffffff").push(platform.text("hi"), mode="aes")


def _garbage_ciphertext():
    timestamp, nonce, encrypt = str(int(time.time())), "n0nce", "bm90IGEgY2lwaGVydGV4dA=="
    query = {**platform.signed_query(timestamp=timestamp, nonce=nonce), "encrypt_type": "aes",
             "msg_signature": sign(TOKEN, timestamp, nonce, encrypt)}
    return Push(query, build_xml({"ToUserName": ACCOUNT, "Encrypt": encrypt}).encode())


AES_CASES = {
    "bad msg_signature": (lambda: _aes_with(msg_signature="0" * 40), 403),
    "bad signature": (lambda: _aes_with(signature="0" * 40), 403),
    "appid mismatch": (_other_appid, 403),
    "undecryptable": (_garbage_ciphertext, 400),
    "no Encrypt": (lambda: Push(platform.signed_query() | {"encrypt_type": "aes"},
                                build_xml({"ToUserName": ACCOUNT}).encode()), 400),
    "plaintext downgrade": (lambda: platform.push(platform.text("hi")), 403),
}


@pytest.mark.parametrize(("make_push", "status"), AES_CASES.values(), ids=AES_CASES.keys())
def test_bad_encrypted_pushes(safe, make_push, status) -> None:
    assert post(safe, make_push()).status_code == status


def test_appid_mismatch_is_logged(safe, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert post(safe, _other_appid()).status_code == 403
    assert any("appid mismatch" in r.getMessage() for r in caplog.records)


def test_without_a_courier_a_late_answer_is_still_given_not_dropped(make_wechat, fake) -> None:
    # No AppSecret: no customer-service API. Replying "success" would lose the answer for good.
    client = make_wechat(ANSWER_BUDGET_S=0.001, WECHAT_SECRET="").test_client()
    response = post(client, platform.push(platform.text(CLASS_SIZE)))
    assert response.status_code == 200
    assert response.get_data(as_text=True) != "success"
    assert "大班额" in response.get_data(as_text=True)
    assert fake.sent("message/custom/send") == []


def test_useful_or_not_right_after_an_answer_rates_it(plain, make_wechat) -> None:
    app = plain.application
    assert reply_text(post(plain, platform.push(platform.text("没用")))).startswith("请先提问")
    post(plain, platform.push(platform.text(CLASS_SIZE)))
    reply = reply_text(post(plain, platform.push(platform.text("没用"))))
    assert reply.startswith("抱歉没能帮上忙")
    [row] = get_service(app).curation.unhelpful()
    assert row["question"] == CLASS_SIZE and row["ref"]
    assert reply_text(post(plain, platform.push(platform.text("有用")))).startswith("谢谢反馈")
    assert get_service(app).curation.unhelpful() == []  # a second rating replaces the first
