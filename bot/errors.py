"""Exceptions raised by the chat layer.

One base class, :class:`BotError`; subclasses add meaning, not code. Bad user input
is never an exception here (an empty or odd question is a normal dialog path); these
are for the operator: a channel that is misconfigured, a setting that is missing.
"""


class BotError(Exception):
    """Base class of every error raised by :mod:`bot`."""


class ConfigError(BotError):
    """A setting is missing or invalid; the message names the variable and how to fix it."""


class Refused(BotError):
    """A message was refused before it was answered (see :class:`bot.storage.Admission`): ``reason``
    is ``replayed`` (its signed timestamp and nonce carried another body before) or ``limited``
    (its sender is over the rate limit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"message refused: {reason}")
        self.reason = reason
