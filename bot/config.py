"""Every setting of the bot, declared once as the fields of one frozen dataclass
(:class:`Settings`), and the one function that builds it (:func:`load_settings`).

Layers, later wins: the fields' defaults → ``<instance>/config.py`` → ``<instance>/.env``
(both optional) → ``POLICYBOT_*`` environment variables → the overrides (tests). The app
keeps its one instance in ``app.extensions`` (:func:`settings_of`); the CLI and the
scripts build theirs with the same function. The table (:data:`SETTINGS`) also feeds
``policybot serve --help-settings`` and the README.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from index.embed import DEFAULT_EMBEDDER

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
        """The key without ``POLICYBOT_`` (also accepted in test mappings and instance/config.py)."""
        return self.name.removeprefix(PREFIX)

    @property
    def attribute(self) -> str:
        """The :class:`Settings` field holding the parsed value."""
        return self.key.lower()


def _setting(default: Any, help: str, parse: Callable[[str], Any] = _text, *, secret: bool = False) -> Any:
    """A :class:`Settings` field: the default is declared here and nowhere else."""
    # Secrets stay out of repr(): a settings object may end up in a log line or a traceback.
    return field(default=None, repr=not secret,
                 metadata={"default": default, "help": help, "parse": parse, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Every setting of the bot, parsed, built once by :func:`load_settings` and shared by the server,
    the CLI and the scripts. Each field's environment variable is ``POLICYBOT_`` + its name in
    capitals; its default, help line and parser are the field's metadata (:data:`SETTINGS`)."""

    data: Path = _setting("./var", "Data directory: index/ and policybot.sqlite3 (question log).", _path)
    embedder: str = _setting(DEFAULT_EMBEDDER, "Embedder the index was built with (must match the index).")
    answer_budget_s: float = _setting(
        4.0, "Seconds a webhook waits for an answer before replying empty and delivering it later.", _seconds)
    log_salt: str | None = _setting(
        None, "Key of the HMAC that hashes user ids in the question log (unset: a random per-database key).",
        secret=True)
    contact_text: str | None = _setting(None, "Who to contact when the documents do not answer (shown to users).")
    answer_workers: int = _setting(8, "Threads per worker that compute answers for the webhooks.", _count)
    keep_versions: int = _setting(5, "How many index versions to keep for rollback.", _count)
    rate_per_minute: int = _setting(
        30, "Questions per minute per client address (/api/ask) and per user (webhooks); 0: no limit.", _whole)
    proxies: int = _setting(0, "Reverse proxies in front of the bot whose X-Forwarded-For is trusted "
                               "(the client address the rate limit counts).", _whole)
    log_days: int = _setting(180, "Days the question log keeps a question (pruned at start and daily).", _count)
    admin_token: str | None = _setting(None, "Bearer token of the admin API and page, 16 characters or more without "
                                       "spaces (unset: /admin only says how to switch it on).", secret=True)
    wechat_token: str | None = _setting(None, "WeChat Official Account Token (setting it mounts /wechat).",
                                        secret=True)
    wechat_aes_key: str | None = _setting(
        None, "WeChat EncodingAESKey, 43 characters (safe/compatible mode).", secret=True)
    wechat_appid: str | None = _setting(None, "WeChat AppID (needed with the AES key and for late answers).")
    wechat_secret: str | None = _setting(None, "WeChat AppSecret (late answers via the message API).",
                                         secret=True)
    wecom_token: str | None = _setting(None, "WeCom app callback Token (setting it mounts /wecom).", secret=True)
    wecom_aes_key: str | None = _setting(None, "WeCom EncodingAESKey, 43 characters (required).", secret=True)
    wecom_corp_id: str | None = _setting(None, "WeCom CorpID (required).")
    wecom_agent_id: str | None = _setting(None, "WeCom AgentID of the app (late answers).")
    wecom_secret: str | None = _setting(None, "WeCom app Secret (late answers via the message API).", secret=True)
    telegram_token: str | None = _setting(
        None, "Telegram bot token from @BotFather (setting it mounts /telegram).", secret=True)
    telegram_secret: str | None = _setting(None, "Telegram webhook secret_token, checked on every update.",
                                           secret=True)
    api_base_wechat: str = _setting("https://api.weixin.qq.com/cgi-bin/",
                                    "WeChat API base URL (tests point it at a local fake).", _url)
    api_base_wecom: str = _setting("https://qyapi.weixin.qq.com/cgi-bin/",
                                   "WeCom API base URL (tests point it at a local fake).", _url)
    api_base_telegram: str = _setting("https://api.telegram.org",
                                      "Telegram Bot API base URL (tests point it at a local fake).", _url)

    def value(self, key: str) -> Any:
        """The value of setting ``key`` (``WECHAT_TOKEN`` or ``POLICYBOT_WECHAT_TOKEN``)."""
        return getattr(self, key.removeprefix(PREFIX).lower())

    def is_set(self, key: str) -> bool:
        """True when setting ``key`` has a value of its own (not unset, not its default)."""
        value = self.value(key)
        return value not in (None, "") and value != _parse(BY_KEY[key.removeprefix(PREFIX)], None)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from ``values`` alone (keys with or without ``POLICYBOT_``), the rest defaults.

        :raise ConfigError: a value cannot be parsed; the message names the variable.
        """
        given = _strip_prefix(values)
        return cls(**{s.attribute: _parse(s, given.get(s.key)) for s in SETTINGS})


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(PREFIX + f.name.upper(), f.metadata["default"], f.metadata["help"], f.metadata["parse"],
            f.metadata["secret"]) for f in fields(Settings))
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

#: Flask settings that are not ours but that the app needs; overridable like any other key.
FLASK_DEFAULTS: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # webhook and API bodies are small; refuse anything bigger (413)
}


def load_settings(overrides: Mapping[str, Any] | None = None, *, instance_path: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the layers in order (later wins): the table's defaults →
    ``<instance>/config.py`` → ``<instance>/.env`` → ``POLICYBOT_*`` variables of ``environ``
    (default: the process environment) → ``overrides``.

    :param instance_path: where ``config.py`` and ``.env`` are looked for (default: the Flask app's
        ``instance/`` folder, the same one :func:`bot.app.create_app` uses).
    :raise ConfigError: a setting's value cannot be parsed; the message names the variable.
    """
    return Settings.from_mapping(_layers(overrides, instance_path=instance_path, environ=environ))


def flask_config(overrides: Mapping[str, Any] | None = None, *, instance_path: Path | None = None) -> dict[str, Any]:
    """The Flask settings (``MAX_CONTENT_LENGTH``, ``TESTING``, ...) from the same layers: every upper-case
    key that is not one of ours."""
    values = {**FLASK_DEFAULTS, **_read_pyfile(_instance(instance_path) / "config.py"),
              **_strip_prefix(overrides or {})}
    return {k: v for k, v in values.items() if k not in BY_KEY}


def _layers(overrides: Mapping[str, Any] | None, *, instance_path: Path | None,
            environ: Mapping[str, str] | None) -> dict[str, Any]:
    instance = _instance(instance_path)
    values: dict[str, Any] = {}
    values.update(_read_pyfile(instance / "config.py"))
    values.update(_from_env_lines(read_env_file(instance / ".env"), source=".env"))
    values.update(_from_env_lines(_prefixed(environ), source="environment"))
    values.update(_strip_prefix(overrides or {}))
    return values


def _instance(instance_path: Path | None) -> Path:
    if instance_path is not None:
        return Path(instance_path)
    from flask import Flask

    # The same import name as create_app's app, hence the same instance folder.
    return Path(Flask("bot.app", instance_relative_config=True).instance_path)


EXTENSION = "policybot.settings"


def settings_of(app: Any = None) -> Settings:
    """The :class:`Settings` of ``app`` (default: the current Flask app)."""
    if app is None:
        from flask import current_app

        app = current_app
    return app.extensions[EXTENSION]


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
    from flask import Config

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
