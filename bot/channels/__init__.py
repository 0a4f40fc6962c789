"""The channel registry: the modules :func:`bot.app.create_app` may mount, in order.

A channel module ``bot.channels.<name>`` defines:

- ``bp``: its Flask blueprint (views: verify → parse → ``bot.service`` → render);
- ``SETTINGS``: the ``POLICYBOT_*`` names it reads;
- ``configured(settings) -> bool``: whether the operator switched it on (a :class:`bot.config.Settings`);
- ``validate(settings) -> None``: raises :class:`bot.errors.ConfigError` naming the
  variable that is missing or malformed.

A channel with none of its settings is not mounted (its URLs are 404). One with
some of them is validated, so a half-configured channel stops the start-up with a
message naming the variable, instead of silently staying off.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

#: Module names under ``bot.channels``; ``web`` is always configured.
CHANNELS: tuple[str, ...] = ("web", "wechat", "wecom", "telegram")


def load_channel(name: str) -> ModuleType:
    """The channel module ``name``.

    :raise ValueError: ``name`` is not in :data:`CHANNELS`.
    """
    if name not in CHANNELS:
        raise ValueError(f"unknown channel {name!r}; expected one of {', '.join(CHANNELS)}")
    return importlib.import_module(f"{__name__}.{name}")


def mount_channels(app: Flask) -> list[str]:
    """Validate and register the blueprint of every configured channel; return their names.

    :raise ConfigError: a channel is partly configured or has a malformed setting.
    """
    from bot.config import settings_of

    settings, mounted = settings_of(app), []
    for name in CHANNELS:
        channel = load_channel(name)
        if not (channel.configured(settings) or _touched(name, channel, settings)):
            continue
        channel.validate(settings)
        if channel.configured(settings):
            app.register_blueprint(channel.bp)
            mounted.append(name)
        else:
            log.warning("channel %s has settings but is not switched on; not mounted", name)
    log.info("channels mounted: %s", ", ".join(mounted))
    return mounted


def _touched(name: str, channel: ModuleType, settings: Any) -> bool:
    """True when any of the channel's settings has a value of its own."""
    from bot.config import BY_KEY, PREFIX

    own = {n.removeprefix(PREFIX) for n in getattr(channel, "SETTINGS", ())}
    own |= {key for key in BY_KEY if key.startswith(f"{name.upper()}_")}
    return any(settings.is_set(key) for key in own if key in BY_KEY)
