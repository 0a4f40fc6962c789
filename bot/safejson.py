"""JSON bodies from the network, parsed without ever raising anything but ``ValueError``.

The standard decoder recurses once per nesting level: ``[[[[…]]]]`` 20,000 deep raises
``RecursionError``, which Flask and our webhooks took for a crash (a 500 and a traceback
per request). Here it is bad input like any other. :class:`JSONProvider` makes Flask's
``request.get_json`` use it too.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider


class TooDeep(ValueError):
    """The document nests deeper than the decoder will follow."""


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """``json.loads``, with nesting too deep to decode reported as :class:`TooDeep` (a ``ValueError``).

    :raise ValueError: not JSON, not UTF-8, or nested too deeply.
    """
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise TooDeep("the JSON nests too deeply") from None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with :func:`loads`: a too-deep body is a 400, never a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s, **kwargs)
