"""Telegram bot webhook at ``/telegram``: checks the secret token header, answers a
text message inline in the webhook response, and acknowledges everything else.

Specs: https://core.telegram.org/bots/api#setwebhook (``secret_token`` arrives as the
``X-Telegram-Bot-Api-Secret-Token`` header), https://core.telegram.org/bots/api#update,
https://core.telegram.org/bots/api#making-requests-when-getting-updates (a method call
returned as the webhook's JSON body) and https://core.telegram.org/bots/api#sendmessage.
The reply is plain text (no ``parse_mode``), so quoted document text needs no escaping.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from bot import safejson
from bot.answering import answer_in_time, courier_for
from bot.channels._xml import Rejected, read_body
from bot.compose import SORRY
from bot.config import Settings, settings_of
from bot.domain import TELEGRAM_LIMIT, Question
from bot.platforms import TelegramCourier
from bot.ratelimit import SLOW_DOWN, allowed
from bot.service import get_service

log = logging.getLogger(__name__)

bp = Blueprint("telegram", __name__, url_prefix="/telegram")
SETTINGS = ("POLICYBOT_TELEGRAM_SECRET",)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Chat:
    """A text message from an update, reduced to what the dialog needs."""

    update_id: int
    chat_id: int
    user_id: str
    text: str

    @property
    def dedupe_key(self) -> str:
        # Telegram redelivers an update with the same update_id until it gets a 2xx.
        # Keyed by the sender too, like every channel: an id reused by another user is another message.
        return f"{self.user_id}:{self.update_id}"

    def question(self, text: str) -> Question:
        return Question(channel="telegram", user_id=self.user_id, text=text, message_id=str(self.update_id))


# Handlers: update kinds, then bot commands; dict lookups with explicit fallbacks --------------

UpdateHandler = Callable[[int, Mapping[str, Any]], "Chat | None"]
UPDATES: dict[str, UpdateHandler] = {}
CommandHandler = Callable[[Chat], "str | None"]
COMMANDS: dict[str, CommandHandler] = {}


def update_kind(kind: str) -> Callable[[UpdateHandler], UpdateHandler]:
    def register(handler: UpdateHandler) -> UpdateHandler:
        UPDATES[kind] = handler
        return handler

    return register


def command(*names: str) -> Callable[[CommandHandler], CommandHandler]:
    def register(handler: CommandHandler) -> CommandHandler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register


@update_kind("message")
def _text_message(update_id: int, message: Mapping[str, Any]) -> Chat | None:
    text, chat, sender = message.get("text"), message.get("chat"), message.get("from") or {}
    if not isinstance(text, str):
        return None  # stickers, photos, locations…: acknowledged, not answered
    if not (isinstance(chat, dict) and _is_int(chat.get("id"))) or not isinstance(sender, dict):
        raise Rejected(400, "message without a chat id")
    user = sender.get("id", chat["id"])
    return Chat(update_id, chat["id"], str(user), text)


def _ignore_update(update_id: int, payload: Mapping[str, Any]) -> None:
    return None  # edited messages, channel posts, callback queries…: 200, nothing to say


@command("/start")
def _start(chat: Chat) -> str:
    return get_service().welcome(TELEGRAM_LIMIT).text


@command("/help")
def _help(chat: Chat) -> str | None:
    return _ask(chat, text="帮助")  # the dialog's own help command


def _ask(chat: Chat, *, text: str | None = None) -> str | None:
    app = current_app._get_current_object()
    if not allowed(app, f"telegram:{chat.user_id}"):
        return SLOW_DOWN
    try:
        return answer_in_time(app, chat.question(chat.text if text is None else text), TELEGRAM_LIMIT,
                              dedupe_key=chat.dedupe_key, courier=_courier(app), address=str(chat.chat_id))
    except Exception:
        # The webhook boundary: a failure becomes a polite line, never a 500 that Telegram retries.
        log.exception("telegram: answering %s failed", chat.dedupe_key)
        return SORRY


def _courier(app: Flask) -> TelegramCourier | None:
    """The app's courier for late answers; None without POLICYBOT_TELEGRAM_TOKEN."""

    def build() -> TelegramCourier | None:
        settings = settings_of(app)
        token = settings.telegram_token
        return TelegramCourier(token, api_base=settings.api_base_telegram) if token else None

    return courier_for(app, "telegram", build)


def respond(chat: Chat) -> str | None:
    """The reply text for a chat message: a command's, or the dialog's answer."""
    word = chat.text.strip().split(maxsplit=1)[0] if chat.text.strip() else ""
    name = word.split("@", 1)[0].lower()  # "/help@policybot" in groups
    return COMMANDS.get(name, _ask)(chat)


# The view -------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_secret() -> None:
    expected = settings_of().telegram_secret or ""
    given = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise Rejected(403, "missing or wrong secret token header")


def _load_update(body: bytes) -> tuple[int, str, Mapping[str, Any]]:
    try:
        update = safejson.loads(body.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and too deep a nesting are ValueErrors too
        raise Rejected(400, f"body is not JSON: {exc}") from exc
    if not isinstance(update, dict) or not _is_int(update.get("update_id")):
        raise Rejected(400, "not an Update object (no integer update_id)")
    kind = next((key for key in update if key != "update_id"), "")
    payload = update.get(kind)
    return update["update_id"], kind, payload if isinstance(payload, dict) else {}


@bp.post("")
def webhook() -> Response:
    """Answer one update inline with a sendMessage call, or acknowledge it with an empty 200."""
    _check_secret()
    update_id, kind, payload = _load_update(read_body(request))
    chat = UPDATES.get(kind, _ignore_update)(update_id, payload)
    text = respond(chat) if chat else None
    if not text:
        return Response("", status=200)
    return jsonify(method="sendMessage", chat_id=chat.chat_id, text=text[: TELEGRAM_LIMIT.max_chars])


@bp.errorhandler(Rejected)
def _refuse(exc: Rejected) -> Response:
    log.warning("%s %s refused (%s): %s", request.method, request.path, exc.status, exc.reason)
    return Response("", status=exc.status)


def configured(settings: Settings) -> bool:
    """True when the bot token or the webhook secret is set (validate then insists on the secret)."""
    return bool(settings.telegram_token or settings.telegram_secret)


def validate(settings: Settings) -> None:
    """Check the Telegram settings.

    :raise ConfigError: naming the variable that is wrong and how to fix it
    """
    from bot.errors import ConfigError

    if not _SECRET.fullmatch(settings.telegram_secret or ""):
        # Without it anyone who guesses the URL could make the bot talk.
        raise ConfigError("POLICYBOT_TELEGRAM_SECRET must be set to 1-256 characters of A-Z, a-z, 0-9, _ "
                          "and - (the secret_token passed to setWebhook)")
    token = settings.telegram_token or ""
    if token and not _TOKEN.fullmatch(token):
        raise ConfigError("POLICYBOT_TELEGRAM_TOKEN must look like 123456:ABC-... (from @BotFather)")
