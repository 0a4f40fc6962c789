"""WeChat Official Account webhook at ``/wechat``: URL check, then pushed messages in
plaintext, compatible or safe (AES) mode, answered with a passive text reply.

Specs: URL check https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html;
messages https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html;
events https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html;
replies https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html;
crypto https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html.

A push goes: verify signature → parse → handler (registry keyed by message kind)
→ dialog via :class:`bot.service.Service` → render. :class:`OfficialAccount` holds
what is specific to this flavour; ``bot.channels.wecom`` subclasses it and
overrides only what WeCom does differently. An answer that misses the budget is
replaced by ``success`` and delivered later (:mod:`bot.answering`).
"""

from __future__ import annotations

import logging
import secrets
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from flask import Blueprint, Flask, Response, current_app, g, request
from wechatpy import events, messages, replies
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage, UnknownMessage

from bot import compose
from bot.answering import answer_in_time, courier_for
from bot.channels._checks import check_aes_key, check_base_url, check_needs, check_token, setting
from bot.channels._xml import (
    CDataField,
    NonceClaim,
    Rejected,
    ReplayGuard,
    check_fresh,
    check_signature,
    clip_utf8,
    load_xml,
    read_body,
)
from bot.channels._xml import require_fields as require
from bot.compose import SORRY
from bot.config import Settings, settings_of
from bot.domain import WECHAT_LIMIT, Limit, Question
from bot.errors import Refused
from bot.platforms import Courier, OfficialAccountClient, OfficialAccountCourier
from bot.ratelimit import SLOW_DOWN, rate_for
from bot.service import get_service
from bot.storage import Admission

log = logging.getLogger(__name__)

bp = Blueprint("wechat", __name__, url_prefix="/wechat")
SETTINGS = ("POLICYBOT_WECHAT_TOKEN", "POLICYBOT_WECHAT_AES_KEY", "POLICYBOT_WECHAT_APPID",
            "POLICYBOT_WECHAT_SECRET", "POLICYBOT_API_BASE_WECHAT")


# Handlers: one per message kind, found by dict lookup with an explicit fallback ---------------

Handler = Callable[["Turn"], "str | None"]
HANDLERS: dict[str, Handler] = {}


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    """Register a handler for message kinds (``"text"``) or events (``"event:subscribe"``)."""

    def register(handler: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = handler
        return handler

    return register


@dataclass(frozen=True)
class Turn:
    """One parsed push on its way to the dialog; channel objects stop here."""

    endpoint: OfficialAccount
    message: BaseMessage
    fields: Mapping[str, Any]

    @property
    def kind(self) -> str:
        msg_type = self.fields["MsgType"].strip().lower()
        return f"event:{self.fields['Event'].strip().lower()}" if msg_type == "event" else msg_type

    @property
    def dedupe_key(self) -> str:
        """The sender with MsgId for messages (WeChat's advice), with CreateTime for events.

        Never MsgId alone: another user's message that reuses an id must not get this one's answer.
        """
        sender = self.fields["FromUserName"]
        return f"{sender}:{self.fields.get('MsgId') or 'event:' + self.fields['CreateTime']}"

    def question(self, text: str) -> Question:
        return Question(channel=self.endpoint.name, user_id=self.fields["FromUserName"], text=text,
                        message_id=self.fields.get("MsgId") or "")

    def ask(self, text: str) -> str | None:
        return self.endpoint.answer(self.question(text), self.dedupe_key)

    def welcome(self) -> str:
        return self.endpoint.welcome()

    def ask_for_text(self) -> str:
        """The dialog's polite "text questions only" line."""
        return compose.render("unsupported", compose.Draft(limit=self.endpoint.limit)).text


@handles("text")
def _answer_text(turn: Turn) -> str | None:
    return turn.ask(turn.fields.get("Content") or "")


@handles("voice")
def _answer_voice(turn: Turn) -> str | None:
    # Recognition is present only when the account has speech recognition switched on.
    recognition = (turn.fields.get("Recognition") or "").strip()
    return turn.ask(recognition) if recognition else turn.ask_for_text()


@handles("event:subscribe")
def _welcome(turn: Turn) -> str:
    return turn.welcome()


@handles("image", "location", "link", "video", "shortvideo", "file")
def _ask_for_text(turn: Turn) -> str:
    return turn.ask_for_text()


def _ignore(turn: Turn) -> None:
    return None  # rendered as ``success``: no reply and no retry


#: Fallbacks by family, for kinds without a handler.
FALLBACKS: dict[str, Handler] = {"event": _ignore, "message": _ask_for_text}


def dispatch(turn: Turn, handlers: Mapping[str, Handler] = HANDLERS) -> str | None:
    """Run the handler for the turn's kind, or its family's fallback."""
    family = "event" if turn.kind.startswith("event:") else "message"
    return handlers.get(turn.kind, FALLBACKS[family])(turn)


# Replies: wechatpy's, with CDATA that survives "]]>" ------------------------------------------


class TextReply(replies.TextReply):
    """wechatpy's passive text reply with CDATA-safe string fields."""

    source = CDataField("FromUserName")
    target = CDataField("ToUserName")
    content = CDataField("Content")


# The flavour ----------------------------------------------------------------------------------


class OfficialAccount:
    """A configured Official Account: credentials, crypto, replay guard and late-answer courier."""

    name: ClassVar[str] = "wechat"
    prefix: ClassVar[str] = "WECHAT"
    limit: ClassVar[Limit] = WECHAT_LIMIT
    empty: ClassVar[str] = "success"
    id_label: ClassVar[str] = "appid"
    id_errors: ClassVar[tuple[type[Exception], ...]] = (InvalidAppIdException,)
    #: wechatpy's registries of message and event classes (its parser's, without its second parse).
    message_types: ClassVar[Mapping[str, type[BaseMessage]]] = messages.MESSAGE_TYPES
    event_types: ClassVar[Mapping[str, type[BaseMessage]]] = events.EVENT_TYPES
    reply_class: ClassVar[type[replies.BaseReply]] = TextReply
    handlers: ClassVar[Mapping[str, Handler]] = HANDLERS

    def __init__(self, settings: Settings, app: Flask) -> None:
        self.app = app
        self.token = setting(settings, f"{self.prefix}_TOKEN")
        self.receive_id = self._receive_id(settings)
        aes_key = setting(settings, f"{self.prefix}_AES_KEY")
        self.crypto = self._crypto(aes_key) if aes_key else None
        self.storage = get_service(app).storage
        self.replay = ReplayGuard(channel=self.name, memos=self.storage)
        self.courier = courier_for(app, self.name, lambda: self._courier(settings))

    # Configuration hooks (WeCom overrides these) ----------------------------

    def _receive_id(self, settings: Settings) -> str:
        return setting(settings, "WECHAT_APPID")

    def _crypto(self, aes_key: str) -> Any:
        return WeChatCrypto(self.token, aes_key, self.receive_id)

    def _courier(self, settings: Settings) -> Courier | None:
        secret = setting(settings, "WECHAT_SECRET")
        if not (secret and self.receive_id):
            return None
        return OfficialAccountCourier(OfficialAccountClient(
            self.receive_id, secret, api_base=settings.api_base_wechat, session=self.storage.tokens))

    # Protocol ---------------------------------------------------------------

    def check_url(self, args: Mapping[str, str]) -> str:
        """Answer the platform's GET URL check.

        :raise Rejected 403: bad signature
        """
        self._check_query_signature(args)
        return args.get("echostr", "")

    def open(self, args: Mapping[str, str], body: bytes) -> tuple[str, dict[str, Any], bool]:
        """Authenticate and unwrap a push: the inner XML, its fields, and whether it was encrypted.

        :raise Rejected: 403 bad signature, stale timestamp, replay, id mismatch; 400 bad XML
        """
        self._check_query_signature(args)
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        check_fresh(timestamp)
        self.hold_nonce(timestamp, nonce, body)
        outer = load_xml(body)
        encrypted = args.get("encrypt_type", "raw").lower() == "aes"
        if encrypted != (self.crypto is not None):
            # A configured key means safe or compatible mode: a plaintext push is a downgrade.
            raise Rejected(403, f"encrypt_type={args.get('encrypt_type', 'raw')} but "
                                f"{self.prefix}_AES_KEY is {'set' if self.crypto else 'not set'}")
        if not encrypted:
            return body.decode("utf-8"), outer, False
        inner = self._decrypt(outer, args)
        return inner, load_xml(inner), True

    def hold_nonce(self, timestamp: str, nonce: str, body: bytes) -> None:
        """Check the signed pair against this process now; the shared store decides with the message's
        claim (one write), or after the reply is chosen when no question is asked (:func:`handle_push`)."""
        g.policybot_nonce = self.replay.pending(timestamp, nonce, body)

    def _check_query_signature(self, args: Mapping[str, str]) -> None:
        check_signature(self.token, args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", ""))

    def _decrypt(self, outer: Mapping[str, Any], args: Mapping[str, str]) -> str:
        require(outer, text=("Encrypt",))
        # Checked here in constant time first; wechatpy checks it again (with ==) before decrypting.
        check_signature(self.token, args.get("msg_signature", ""), args.get("timestamp", ""),
                        args.get("nonce", ""), outer["Encrypt"])
        try:
            return self.crypto.decrypt_message(dict(outer), args.get("msg_signature", ""),
                                               args.get("timestamp", ""), args.get("nonce", ""))
        except InvalidSignatureException as exc:
            raise Rejected(403, "bad msg_signature") from exc
        except self.id_errors as exc:
            log.warning("%s: %s mismatch in encrypted push; refused", self.name, self.id_label)
            raise Rejected(403, f"{self.id_label} mismatch") from exc
        except (ValueError, IndexError, struct.error) as exc:
            raise Rejected(400, f"cannot decrypt: {exc!r}") from exc

    def parse(self, inner: str, fields: Mapping[str, Any]) -> BaseMessage:
        """Turn checked fields into a wechatpy message (its registry, its fallback)."""
        require(fields, text=("ToUserName", "FromUserName", "MsgType"), numbers=("CreateTime",),
                optional_text=("Content", "Recognition", "Event", "EventKey"), optional_numbers=("MsgId",))
        kind = fields["MsgType"].strip().lower()
        if kind == "event":
            require(fields, text=("Event",))
        # The fields are wechatpy's own input (xmltodict's dict of the same XML): parsed once, here.
        table, name = (self.event_types, fields["Event"].strip().lower()) if kind == "event" else \
            (self.message_types, kind)
        return table.get(name, UnknownMessage)(dict(fields))

    def answer(self, question: Question, dedupe_key: str) -> str | None:
        """Ask the dialog through the service within the budget; ``None`` if it will come late."""
        nonce: NonceClaim | None = g.get("policybot_nonce")
        admission = Admission(nonce=nonce.key if nonce else None,
                              rate=rate_for(self.app, f"{self.name}:{question.user_id}"))
        try:
            return answer_in_time(self.app, question, self.limit, dedupe_key=dedupe_key,
                                  courier=self.courier, address=question.user_id, admission=admission)
        except Refused as exc:
            if exc.reason == "limited":
                return SLOW_DOWN
            raise Rejected(403, f"replayed timestamp/nonce with another body ({dedupe_key})") from exc
        except Exception:
            # The webhook boundary: whatever broke, the user gets a polite line, never a 500.
            log.exception("%s: answering %s failed", self.name, dedupe_key)
            return SORRY
        finally:
            if nonce is not None and admission.nonce_ok is not None:
                nonce.accepted = admission.nonce_ok  # decided in the claim's write: settle() writes nothing more

    def welcome(self) -> str:
        return get_service(self.app).welcome(self.limit).text

    def render(self, message: BaseMessage, text: str | None, *, encrypted: bool) -> Response:
        """The passive reply; an empty one is plain ``success`` and never encrypted."""
        if not text:
            return Response(self.empty, mimetype="text/plain")
        xml = self._reply(message, self._clip(text)).render()
        if encrypted:
            xml = self.crypto.encrypt_message(xml, secrets.token_hex(8))
        return Response(xml, mimetype="application/xml")

    def _reply(self, message: BaseMessage, text: str) -> replies.BaseReply:
        return self.reply_class(message=message, content=text)

    def _clip(self, text: str) -> str:
        # The dialog honours the limit; this guard keeps a reply the platform would refuse off the wire.
        return clip_utf8(text, self.limit.max_bytes) if self.limit.max_bytes else text


_endpoints_lock = threading.Lock()


def endpoint_for(app: Flask, cls: type[OfficialAccount]) -> OfficialAccount:
    """The app's one instance of ``cls`` (it owns the replay guard and the token cache)."""
    key = f"policybot.channel.{cls.name}"
    with _endpoints_lock:
        if key not in app.extensions:
            app.extensions[key] = cls(settings_of(app), app)
        return app.extensions[key]


def handle_url_check(cls: type[OfficialAccount]) -> Response:
    endpoint = endpoint_for(current_app._get_current_object(), cls)
    return Response(endpoint.check_url(request.args), mimetype="text/plain")


def handle_push(cls: type[OfficialAccount]) -> Response:
    """verify signature → parse → dialog → render, for either flavour."""
    endpoint = endpoint_for(current_app._get_current_object(), cls)
    body = read_body(request)
    inner, fields, encrypted = endpoint.open(request.args, body)
    message = endpoint.parse(inner, fields)
    text = dispatch(Turn(endpoint, message, fields), endpoint.handlers)
    endpoint.replay.settle(g.pop("policybot_nonce"))  # already decided if a question carried it
    return endpoint.render(message, text, encrypted=encrypted)


def refuse(exc: Rejected) -> Response:
    """One log line and a bare status for any refused request."""
    log.warning("%s %s refused (%s): %s", request.method, request.path, exc.status, exc.reason)
    return Response("", status=exc.status, mimetype="text/plain")


@bp.get("")
def url_check() -> Response:
    """Echo ``echostr`` to WeChat's URL check if the signature holds."""
    return handle_url_check(OfficialAccount)


@bp.post("")
def push() -> Response:
    """Answer one pushed message or event with a passive reply (or ``success``)."""
    return handle_push(OfficialAccount)


bp.register_error_handler(Rejected, refuse)


def configured(settings: Settings) -> bool:
    """True when the WeChat token is set: the channel is then mounted."""
    return bool(settings.wechat_token)


def validate(settings: Settings) -> None:
    """Check the WeChat settings.

    :raise ConfigError: naming the variable that is wrong and how to fix it
    """
    check_token(settings, "WECHAT_TOKEN")
    check_aes_key(settings, "WECHAT_AES_KEY", needs="WECHAT_APPID")
    check_needs(settings, "WECHAT_SECRET", needs="WECHAT_APPID")
    check_base_url(settings, "API_BASE_WECHAT")
