"""Test helpers that play the WeChat and WeCom servers against our webhooks.

They sign and encrypt pushes with wechatpy's real crypto and a real 43-character
EncodingAESKey, exactly as the platforms do, and open (verify + decrypt) the
replies. Specs: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html,
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html,
https://developer.work.weixin.qq.com/document/path/90968 (WeCom crypto),
https://developer.work.weixin.qq.com/document/path/90238 (WeCom URL check).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto
from wechatpy.utils import WeChatSigner

# Fixed test credentials; the key is wechatpy's own test vector (43 chars, decodes to 32 bytes).
TOKEN = "policybotTestToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx0123456789abcdef"
ACCOUNT = "gh_policybot"
CORP_ID = "ww0123456789abcdef"
AGENT_ID = 1000002
USER = "oPolicybotTestUser0000000001"

_msg_ids = itertools.count(7_000_000_000_000_000_001)

# What a reply to the example question must contain.
TITLE = "《衡阳市教育局2020年工作要点》"
CLASS_SIZE = "班里人太多了谁管？"


def assert_quotes_class_size_answer(text: str) -> None:
    """The reply cites the work plan and quotes a 大班额 sentence verbatim from corpus/."""
    from tests.conftest import CORPUS

    corpus = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.*")))
    assert TITLE in text, text
    # clauses, so that a quote joining two sentences apart with "……" is checked piece by piece
    quoted = [s for s in re.split(r"[。；\n]|……", text) if "大班额" in s]
    assert any(s.strip(" “”\"") in corpus for s in quoted), text


def sign(*parts: str) -> str:
    """SHA1 over the sorted parts: the platforms' signature (wechatpy's own signer)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def next_msg_id() -> str:
    return str(next(_msg_ids))


def _cdata(value: Any) -> str:
    return f"<![CDATA[{value}]]>"


def build_xml(fields: dict[str, Any]) -> str:
    """``<xml>`` with string fields in CDATA and ints bare, the way the platforms write it."""
    body = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items()
    )
    return f"<xml>{body}</xml>"


@dataclass
class Push:
    """One signed request, ready for ``client.post(path, query_string=query, data=body)``."""

    query: dict[str, str]
    body: bytes
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class WeChatServer:
    """Plays the WeChat Official Account server (plaintext, compatible and safe modes)."""

    token: str = TOKEN
    aes_key: str = AES_KEY
    app_id: str = APPID
    account: str = ACCOUNT
    path: str = "/wechat"

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.app_id)

    # Messages ------------------------------------------------------------------

    def text(self, content: str, *, msg_id: str | None = None, user: str = USER, **extra: Any) -> dict:
        return self._message("text", Content=content, MsgId=msg_id or next_msg_id(), user=user, **extra)

    def voice(self, recognition: str | None, *, user: str = USER) -> dict:
        extra = {"Recognition": recognition} if recognition is not None else {}
        return self._message("voice", MediaId="media-1", Format="amr", MsgId=next_msg_id(), user=user,
                             **extra)

    def media(self, msg_type: str, *, user: str = USER) -> dict:
        extra = {
            "image": {"PicUrl": "http://example.invalid/a.jpg", "MediaId": "m1"},
            "location": {"Location_X": "26.89", "Location_Y": "112.57", "Scale": "15", "Label": "衡阳"},
            "link": {"Title": "标题", "Description": "描述", "Url": "http://example.invalid/"},
            "video": {"MediaId": "m2", "ThumbMediaId": "m3"},
            "shortvideo": {"MediaId": "m2", "ThumbMediaId": "m3"},
        }.get(msg_type, {})
        return self._message(msg_type, MsgId=next_msg_id(), user=user, **extra)

    def event(self, event: str, *, user: str = USER, create_time: int | None = None, **extra: Any) -> dict:
        return self._message("event", Event=event, user=user, create_time=create_time, **extra)

    def _message(self, msg_type: str, *, user: str, create_time: int | None = None, **extra: Any) -> dict:
        fields: dict[str, Any] = {
            "ToUserName": self.account,
            "FromUserName": user,
            "CreateTime": create_time or int(time.time()),
            "MsgType": msg_type,
        }
        fields.update(extra)
        return fields

    # Requests ------------------------------------------------------------------

    def signed_query(self, *, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(5)
        return {"timestamp": timestamp, "nonce": nonce, "signature": sign(self.token, timestamp, nonce)}

    def url_check(self, echostr: str = "echo-1234567890") -> dict[str, str]:
        """Query for the GET with which the platform checks the URL."""
        return {**self.signed_query(), "echostr": echostr}

    def push(self, fields: dict | str | bytes, *, mode: str = "plain", timestamp: str | None = None,
             nonce: str | None = None) -> Push:
        """Sign (and for ``aes``/``compat`` encrypt) a push of ``fields`` (or raw XML)."""
        xml = fields if isinstance(fields, str | bytes) else build_xml(fields)
        query = self.signed_query(timestamp=timestamp, nonce=nonce)
        meta = fields if isinstance(fields, dict) else {}
        if mode == "plain":
            return Push(query, xml.encode("utf-8") if isinstance(xml, str) else xml, meta)
        encrypt, msg_signature = self._seal(xml, query["timestamp"], query["nonce"])
        query.update(encrypt_type="aes", msg_signature=msg_signature, openid=meta.get("FromUserName", USER))
        outer = dict(meta) if mode == "compat" else {"ToUserName": self.account}
        outer["Encrypt"] = encrypt
        return Push(query, build_xml(outer).encode("utf-8"), meta)

    def _seal(self, xml: str | bytes, timestamp: str, nonce: str) -> tuple[str, str]:
        text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
        sealed = xmltodict.parse(self.crypto.encrypt_message(text, nonce, timestamp))["xml"]
        return sealed["Encrypt"], sealed["MsgSignature"]

    # Replies -------------------------------------------------------------------

    def open_reply(self, body: bytes | str) -> dict[str, Any] | None:
        """The reply's fields, decrypted and signature-checked if encrypted; None for ``success``/empty."""
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if text in ("", "success"):
            return None
        fields = xmltodict.parse(text)["xml"]
        if "Encrypt" not in fields:
            return fields
        inner = self.crypto.decrypt_message(
            text, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
        )
        return xmltodict.parse(inner)["xml"]


@dataclass
class WeComServer(WeChatServer):
    """Plays the WeCom server: always encrypted, corp id as receive id, AgentID in messages."""

    app_id: str = CORP_ID
    account: str = CORP_ID
    agent_id: int = AGENT_ID
    path: str = "/wecom"

    @property
    def crypto(self) -> WorkCrypto:  # type: ignore[override]
        return WorkCrypto(self.token, self.aes_key, self.app_id)

    def _message(self, msg_type: str, *, user: str, create_time: int | None = None, **extra: Any) -> dict:
        fields = super()._message(msg_type, user=user, create_time=create_time, **extra)
        fields.setdefault("AgentID", self.agent_id)
        return fields

    def url_check(self, echostr: str = "wecom-echo-1234567890") -> dict[str, str]:  # type: ignore[override]
        """WeCom's GET: echostr is encrypted, msg_signature covers it."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        encrypted, msg_signature = self._seal(echostr, timestamp, nonce)
        return {"msg_signature": msg_signature, "timestamp": timestamp, "nonce": nonce, "echostr": encrypted}

    def push(self, fields: dict | str | bytes, *, mode: str = "aes", timestamp: str | None = None,
             nonce: str | None = None) -> Push:
        push = super().push(fields, mode=mode, timestamp=timestamp, nonce=nonce)
        if mode != "plain":
            # WeCom sends only msg_signature; the outer XML names the corp and the agent.
            push.query = {k: push.query[k] for k in ("msg_signature", "timestamp", "nonce")}
            outer = {"ToUserName": self.account, "AgentID": self.agent_id,
                     "Encrypt": xmltodict.parse(push.body)["xml"]["Encrypt"]}
            push.body = build_xml(outer).encode("utf-8")
        return push
