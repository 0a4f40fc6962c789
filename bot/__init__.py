"""policybot's chat layer: the Flask app (:func:`create_app`), its channels and services.

``import bot`` stays light: :func:`create_app` is imported from :mod:`bot.app` on first use.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["create_app"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # Lazy so that `policybot --help` and the channel modules do not pay for Flask and the index.
    if name == "create_app":
        from bot.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
