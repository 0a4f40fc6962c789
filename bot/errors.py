"""Exceptions raised by the chat layer.

One base class, :class:`BotError`; subclasses add meaning, not code. Bad user input
is never an exception here (an empty or odd question is a normal dialog path); these
are for the operator: a channel that is misconfigured, a setting that is missing.
"""


class BotError(Exception):
    """Base class of every error raised by :mod:`bot`."""


class ConfigError(BotError):
    """A setting is missing or invalid; the message names the variable and how to fix it."""
