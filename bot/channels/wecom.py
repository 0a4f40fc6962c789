"""WeCom (企业微信) self-built app webhook at ``/wecom``: encrypted URL check and
encrypted pushes, answered with an encrypted passive reply that names the AgentID.

Specs: callback setup and URL check https://developer.work.weixin.qq.com/document/path/90238;
crypto https://developer.work.weixin.qq.com/document/path/90968; messages
https://developer.work.weixin.qq.com/document/path/90239; events
https://developer.work.weixin.qq.com/document/path/90240; passive replies
https://developer.work.weixin.qq.com/document/path/90241; late answers go through
https://developer.work.weixin.qq.com/document/path/90236.

A sibling of :mod:`bot.channels.wechat`: the same handlers, the same view steps;
:class:`WorkApp` overrides only what WeCom does differently (always encrypted, the
corp id as receive id, the AgentID in replies, ``message/send`` for late answers).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from typing import Any, ClassVar

from flask import Blueprint, Response
from wechatpy.enterprise import events as work_events
from wechatpy.enterprise import messages as work_messages
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.fields import IntegerField
from wechatpy.messages import BaseMessage

from bot.channels._checks import check_aes_key, check_base_url, check_needs, check_number, check_token, setting
from bot.channels._xml import Rejected, check_fresh, check_signature, load_xml, require_fields
from bot.channels.wechat import OfficialAccount, TextReply, handle_push, handle_url_check, refuse
from bot.config import Settings
from bot.platforms import Courier, WorkClient, WorkCourier

log = logging.getLogger(__name__)

bp = Blueprint("wecom", __name__, url_prefix="/wecom")
SETTINGS = ("POLICYBOT_WECOM_TOKEN", "POLICYBOT_WECOM_AES_KEY", "POLICYBOT_WECOM_CORP_ID",
            "POLICYBOT_WECOM_AGENT_ID", "POLICYBOT_WECOM_SECRET", "POLICYBOT_API_BASE_WECOM")


class WorkTextReply(TextReply):
    """The CDATA-safe text reply plus WeCom's ``AgentID``."""

    agent = IntegerField("AgentID", 0)


class WorkApp(OfficialAccount):
    """A configured WeCom app. Differs from an Official Account only where WeCom does."""

    name: ClassVar[str] = "wecom"
    prefix: ClassVar[str] = "WECOM"
    empty: ClassVar[str] = ""
    id_label: ClassVar[str] = "corp id"
    id_errors: ClassVar[tuple[type[Exception], ...]] = (InvalidCorpIdException,)
    message_types: ClassVar[Mapping[str, type[BaseMessage]]] = work_messages.MESSAGE_TYPES
    event_types: ClassVar[Mapping[str, type[BaseMessage]]] = work_events.EVENT_TYPES
    reply_class = WorkTextReply

    def __init__(self, settings: Settings, app: Any) -> None:
        agent = setting(settings, "WECOM_AGENT_ID")
        self.agent_id = int(agent) if agent.isdigit() else 0
        super().__init__(settings, app)

    def _receive_id(self, settings: Settings) -> str:
        return setting(settings, "WECOM_CORP_ID")

    def _crypto(self, aes_key: str) -> WorkCrypto:
        return WorkCrypto(self.token, aes_key, self.receive_id)

    def _courier(self, settings: Settings) -> Courier | None:
        secret = setting(settings, "WECOM_SECRET")
        if not (secret and self.receive_id and self.agent_id):
            return None
        client = WorkClient(self.receive_id, secret, api_base=settings.api_base_wecom, session=self.storage.tokens)
        return WorkCourier(client, self.agent_id)

    def check_url(self, args: Mapping[str, str]) -> str:
        """Decrypt WeCom's ``echostr`` if its ``msg_signature`` holds.

        :raise Rejected 403: bad signature or corp id; 400 undecryptable echostr
        """
        # Base64 '+' sent unescaped arrives as a space after query decoding.
        echostr = args.get("echostr", "").replace(" ", "+")
        check_signature(self.token, args.get("msg_signature", ""), args.get("timestamp", ""), args.get("nonce", ""),
                        echostr)  # in constant time, before wechatpy's own == check
        try:
            return self.crypto.check_signature(args.get("msg_signature", ""), args.get("timestamp", ""),
                                               args.get("nonce", ""), echostr)
        except InvalidSignatureException as exc:
            raise Rejected(403, "bad msg_signature") from exc
        except InvalidCorpIdException as exc:
            log.warning("wecom: corp id mismatch in URL check; refused")
            raise Rejected(403, "corp id mismatch") from exc
        except (ValueError, IndexError, struct.error) as exc:
            raise Rejected(400, f"cannot decrypt echostr: {exc!r}") from exc

    def open(self, args: Mapping[str, str], body: bytes) -> tuple[str, dict[str, Any], bool]:
        """Always encrypted; ``msg_signature`` covers the body, so decrypt first, then freshness/replay."""
        outer = load_xml(body)
        self._check_addressee(outer)
        inner = self._decrypt(outer, args)
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        check_fresh(timestamp)
        self.hold_nonce(timestamp, nonce, body)
        return inner, load_xml(inner), True

    def _check_addressee(self, outer: Mapping[str, Any]) -> None:
        to_user, agent = outer.get("ToUserName"), outer.get("AgentID")
        if to_user is not None and to_user != self.receive_id:
            log.warning("wecom: corp id mismatch: push for %r, configured %r; refused",
                        to_user, self.receive_id)
            raise Rejected(403, "corp id mismatch")
        if agent and self.agent_id and str(agent).strip() != str(self.agent_id):
            log.warning("wecom: agent id mismatch: push for %r, configured %r; refused", agent, self.agent_id)
            raise Rejected(403, "agent id mismatch")

    def parse(self, inner: str, fields: Mapping[str, Any]) -> BaseMessage:
        require_fields(fields, optional_numbers=("AgentID",))
        return super().parse(inner, fields)

    def _reply(self, message: BaseMessage, text: str) -> WorkTextReply:
        agent = getattr(message, "agent", 0) or self.agent_id
        return WorkTextReply(message=message, content=text, agent=agent)


@bp.get("")
def url_check() -> Response:
    """Return the decrypted ``echostr`` to WeCom's URL check."""
    return handle_url_check(WorkApp)


@bp.post("")
def push() -> Response:
    """Answer one pushed message or event with an encrypted passive reply (or an empty 200)."""
    return handle_push(WorkApp)


bp.register_error_handler(Rejected, refuse)


def configured(settings: Settings) -> bool:
    """True when the WeCom token is set: the channel is then mounted."""
    return bool(settings.wecom_token)


def validate(settings: Settings) -> None:
    """Check the WeCom settings (WeCom always encrypts, so the key and corp id are required).

    :raise ConfigError: naming the variable that is wrong and how to fix it
    """
    from bot.errors import ConfigError

    check_token(settings, "WECOM_TOKEN")
    for name in ("WECOM_AES_KEY", "WECOM_CORP_ID"):
        if not setting(settings, name):
            raise ConfigError(f"POLICYBOT_{name} must be set: WeCom callbacks are always encrypted")
    check_aes_key(settings, "WECOM_AES_KEY", needs="WECOM_CORP_ID")
    check_number(settings, "WECOM_AGENT_ID")
    check_needs(settings, "WECOM_SECRET", needs="WECOM_AGENT_ID")
    check_base_url(settings, "API_BASE_WECOM")
