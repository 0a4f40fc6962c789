"""Settings checks shared by the WeChat and WeCom channels: each failure is a
:class:`bot.errors.ConfigError` naming the ``POLICYBOT_*`` variable and how to fix it."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.config import Settings

_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")
_B64 = re.compile(r"[A-Za-z0-9+/]{43}")


def setting(settings: Settings, name: str) -> str:
    """Setting ``name`` (``WECHAT_TOKEN``) of a :class:`bot.config.Settings` as text ('' if unset)."""
    value = settings.value(name)
    return "" if value is None else str(value).strip()


def _fail(name: str, problem: str) -> None:
    raise ConfigError(f"POLICYBOT_{name} {problem}")


def check_token(settings: Settings, name: str) -> None:
    if not _TOKEN.fullmatch(setting(settings, name)):
        _fail(name, "must be the 3-32 letters or digits entered as Token on the platform")


def check_aes_key(settings: Settings, name: str, *, needs: str) -> None:
    key = setting(settings, name)
    if not key:
        return
    if not _B64.fullmatch(key) or len(base64.b64decode(key + "=")) != 32:
        _fail(name, f"must be the 43-character EncodingAESKey from the platform (got {len(key)} characters)")
    check_needs(settings, name, needs=needs)


def check_needs(settings: Settings, name: str, *, needs: str) -> None:
    if setting(settings, name) and not setting(settings, needs):
        _fail(needs, f"must be set when POLICYBOT_{name} is")


def check_number(settings: Settings, name: str) -> None:
    if setting(settings, name) and not setting(settings, name).isdigit():
        _fail(name, "must be a number")


def check_base_url(settings: Settings, name: str) -> None:
    url = setting(settings, name)
    if url and not url.startswith(("https://", "http://")):
        _fail(name, f"must be an http(s) URL ending in /cgi-bin/ (got {url!r})")
