"""Hardened intake shared by the WeChat and WeCom webhooks: body size cap, strict
UTF-8, DTD/entity refusal before any parser runs, a flat-field check on the parsed
``<xml>`` root, timestamp freshness, (timestamp, nonce) replay refusal, constant-time signature checks, and reply
rendering that survives ``]]>`` in the text.

Formats: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
and https://developer.work.weixin.qq.com/document/path/90239 (messages),
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
(passive replies). Every refusal is a :class:`Rejected`, which each blueprint turns
into a status code and one log line; nothing here ever produces a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from xml.parsers.expat import ExpatError

import xmltodict
from flask import Request
from wechatpy.fields import StringField
from wechatpy.utils import WeChatSigner

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
FRESHNESS_S = 300
# Characters XML 1.0 forbids even inside CDATA; an answer quoting a document
# with a stray control character must still render as well-formed XML.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_DIGITS = re.compile(r"\d{1,20}")


class Rejected(Exception):
    """A request the webhook refuses: ``status`` goes to the client, ``reason`` to the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_body(request: Request, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """Return the raw body, at most ``limit`` bytes.

    :raise Rejected 413: the declared or actual length is over ``limit``
    """
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, f"body of {request.content_length} bytes is over {limit}")
    # Read one byte past the limit: a chunked body has no Content-Length to trust.
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise Rejected(413, f"body is over {limit} bytes")
    return body


def load_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a WeChat ``<xml>`` document into its top-level fields.

    :raise Rejected 400: not UTF-8, has a DTD or entity declaration, is not
        well-formed, or has no ``<xml>`` element with child fields
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, "body is not UTF-8") from exc
    # Refused before parsing: expat would otherwise expand internal entities
    # (billion laughs) long before any handler could object.
    if any(_DTD.search(part) for part in _outside_cdata(raw)):
        raise Rejected(400, "DOCTYPE/ENTITY declarations are not accepted")
    try:
        doc = xmltodict.parse(text, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise Rejected(400, f"malformed XML: {exc}") from exc
    fields = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(fields, dict):
        raise Rejected(400, "no <xml> root with fields")
    return fields


def _outside_cdata(raw: bytes) -> list[bytes]:
    """The parts of ``raw`` outside CDATA sections, where markup can live.

    A user may well type ``<!DOCTYPE`` into a question; inside CDATA it is text.
    str.find keeps this linear however many sections there are.
    """
    parts, pos = [], 0
    while (start := raw.find(b"<![CDATA[", pos)) != -1:
        end = raw.find(b"]]>", start + 9)
        if end == -1:
            break
        parts.append(raw[pos:start])
        pos = end + 3
    parts.append(raw[pos:])
    return parts


def require_fields(
    fields: Mapping[str, Any], *, text: Iterable[str] = (), numbers: Iterable[str] = (),
    optional_text: Iterable[str] = (), optional_numbers: Iterable[str] = (),
) -> None:
    """Check that the named fields are plain strings (``numbers``: decimal digits).

    wechatpy reads fields lazily and would hand back a dict, a list or raise on
    ``int()`` later; checking here turns that into a 400 instead of a 500.

    :raise Rejected 400: a required field is missing, or a field has the wrong shape
    """
    for name in (*text, *numbers):
        if fields.get(name) is None:
            raise Rejected(400, f"missing <{name}>")
    for name in (*text, *optional_text):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise Rejected(400, f"<{name}> is not plain text")
    for name in (*numbers, *optional_numbers):
        value = fields.get(name)
        if value is not None and not (isinstance(value, str) and _DIGITS.fullmatch(value.strip())):
            raise Rejected(400, f"<{name}> is not a number")


def check_fresh(timestamp: str, *, now: float | None = None, window: int = FRESHNESS_S) -> None:
    """Refuse a signed timestamp more than ``window`` seconds away from now.

    :raise Rejected 403: missing, not a number, or too old / too far ahead
    """
    if not _DIGITS.fullmatch(timestamp or ""):
        raise Rejected(403, "timestamp is not a number")
    skew = int(timestamp) - (time.time() if now is None else now)
    if abs(skew) > window:
        raise Rejected(403, f"timestamp is {skew:+.0f} s off (window ±{window} s)")


class Nonces(Protocol):
    """The shared record of signed (timestamp, nonce) pairs (``bot.storage.Storage`` is one)."""

    def claim_nonce(self, channel: str, timestamp: str, nonce: str, digest: str) -> bool: ...


@dataclass
class NonceClaim:
    """A signed (timestamp, nonce) pair and the body it signed, until the shared store has decided
    (``accepted``: None until then)."""

    channel: str
    timestamp: str
    nonce: str
    digest: str  # SHA-256 of the body
    accepted: bool | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.channel, self.timestamp, self.nonce, self.digest

    def refusal(self) -> Rejected:
        return Rejected(403, f"replayed timestamp/nonce {self.timestamp}/{self.nonce} with another body")


class ReplayGuard:
    """Refuses a (timestamp, nonce) pair that signed another body before, in any worker.

    A platform retry resends the same body and passes; the same pair with another body
    is a replay of a captured signature and is refused. A bounded LRU answers quickly
    for this process; ``memos`` (the shared SQLite store) decides for all workers with
    one atomic insert under a unique key, so two workers racing with two bodies can
    never both accept.
    """

    def __init__(self, *, channel: str, memos: Nonces | None = None, size: int = 10_000) -> None:
        self._channel = channel
        self._memos = memos
        self._size = size
        self._seen: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, timestamp: str, nonce: str, body: bytes) -> None:
        """Claim the pair for ``body``, or refuse it if it signed a different body before.

        :raise Rejected 403: the pair was seen with another body
        """
        self.settle(self.pending(timestamp, nonce, body))

    def pending(self, timestamp: str, nonce: str, body: bytes) -> NonceClaim:
        """The claim of the pair for ``body``, checked against this process only: the shared store
        decides in :meth:`settle`, or in the transaction that claims the message it carries.

        :raise Rejected 403: this process saw the pair with another body
        """
        claim = NonceClaim(self._channel, timestamp, nonce, hashlib.sha256(body).hexdigest())
        with self._lock:
            previous = self._seen.get((timestamp, nonce), claim.digest)
        if previous != claim.digest:
            raise claim.refusal()
        return claim

    def settle(self, claim: NonceClaim) -> None:
        """Decide ``claim`` in the shared store unless a message's claim did already, and remember it.

        :raise Rejected 403: the pair signed another body before (in any worker)
        """
        if claim.accepted is None:
            claim.accepted = self._memos is None or self._memos.claim_nonce(*claim.key)
        if not (claim.accepted and self._remember((claim.timestamp, claim.nonce), claim.digest)):
            raise claim.refusal()

    def _remember(self, key: tuple[str, str], digest: str) -> bool:
        # Only what the shared store accepted: a forgery refused there must not shut out the genuine retry.
        with self._lock:
            previous = self._seen.setdefault(key, digest)
            self._seen.move_to_end(key)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return previous == digest


def check_signature(token: str, signature: str, *parts: str) -> None:
    """wechatpy's SHA-1 signature over ``token`` and ``parts``, compared in constant time.

    wechatpy compares with ``==``, whose time tells how much of a guess was right.

    :raise Rejected 403: the signature does not match
    """
    signer = WeChatSigner()
    signer.add_data(token, *parts)
    if not hmac.compare_digest(signer.signature.encode("ascii"), (signature or "").encode("utf-8")):
        raise Rejected(403, "bad signature")


def xml_safe(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry at all."""
    return _NOT_XML.sub("", text)


class CDataField(StringField):
    """A wechatpy ``StringField`` whose CDATA section survives ``]]>`` in the value.

    wechatpy pastes the value into ``<![CDATA[...]]>`` as is, so ``]]>`` would end
    the section early; splitting it across two sections keeps the text intact.
    """

    def to_xml(self, value: Any) -> str:
        safe = xml_safe(self.converter(value)).replace("]]>", "]]]]><![CDATA[>")
        return f"<{self.name}><![CDATA[{safe}]]></{self.name}>"


def clip_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")
