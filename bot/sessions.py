"""Per-user follow-up memory: what each user asked last, for a few minutes.

A short follow-up ("那高中呢？", "还有呢") only makes sense against the same user's
previous question, so the memory is keyed by ``(channel, user_id)``, expires after a
TTL, and is bounded (least recently used users are dropped first).
:class:`SessionMemory` lives in one process (the CLI, tests); the server uses
:class:`SharedSessionMemory`, kept in SQLite, because a user's next message may reach
another worker. A restart may forget; for a few minutes of context that is acceptable.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from bot.storage.base import Write
from bot.storage.sessions import live

SessionKey = tuple[str, str]


@dataclass(frozen=True)
class Session:
    """One user's recent context.

    ``topic`` is the last standalone question (follow-ups keep the question they
    follow), ``focus`` the subject the last follow-up switched to ("那高中呢"),
    ``shown`` the ``(doc_id, locator)`` of the items the last answer cited, ``answered``
    the item the last answer quoted ("具体怎么做" opens it; None after a decline), and
    ``doc_id`` the document chosen with ``目录 N`` (None: the newest).
    """

    topic: str = ""
    focus: str = ""
    shown: tuple[tuple[str, str], ...] = ()
    answered: tuple[str, str] | None = None
    doc_id: str | None = None
    at: float = 0.0


class SessionMemory:
    """A thread-safe, TTL-bounded LRU map from ``(channel, user_id)`` to :class:`Session`."""

    def __init__(self, *, ttl_s: float = 300.0, max_users: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0 or max_users <= 0:
            raise ValueError(f"ttl_s and max_users must be positive (got {ttl_s}, {max_users})")
        self.ttl_s = ttl_s
        self.max_users = max_users
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[SessionKey, Session] = OrderedDict()

    def get(self, key: SessionKey) -> Session | None:
        """The user's session if it is younger than the TTL, else None (and it is dropped)."""
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.at > self.ttl_s:
                del self._sessions[key]
                return None
            self._sessions.move_to_end(key)
            return session

    def update(self, key: SessionKey, **changes) -> Session:
        """Change fields of the user's live session (or a fresh one) and restart its TTL."""
        now = self._clock()
        with self._lock:
            old = self._sessions.get(key)
            if old is None or now - old.at > self.ttl_s:
                old = Session()
            session = replace(old, **changes, at=now)
            self._sessions[key] = session
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.max_users:
                self._sessions.popitem(last=False)
            return session

    def forget(self, key: SessionKey) -> None:
        """Drop the user's session, if any."""
        with self._lock:
            self._sessions.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class SharedSessionMemory:
    """The same memory kept in the bot's SQLite store, so every gunicorn worker sees it.

    With several workers a user's follow-up ("那高中呢？", "回复 25") often reaches another
    worker than the question it follows; an in-process memory would lose the context (or
    open item 25 of the wrong document). Users are stored only as the store's salted hash,
    and sessions older than the TTL are deleted as new ones are written (at most once a minute).
    Inside :meth:`deferred` (one message) a user's row is read once and written once.
    """

    def __init__(self, storage, *, ttl_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive (got {ttl_s})")
        self.storage = storage
        self.ttl_s = ttl_s
        self._clock = clock  # wall time: the workers share no monotonic clock (the table: bot.storage.sessions)
        self._local = threading.local()

    def get(self, key: SessionKey) -> Session | None:
        """The user's session if it is younger than the TTL, else None (with this thread's deferred
        changes applied)."""
        user, since = self._user(key), self._clock() - self.ttl_s
        message: _Message | None = getattr(self._local, "message", None)
        data = message.data(user, since) if message else self.storage.load_session(user, since=since)
        return _load(data) if data else None

    def update(self, key: SessionKey, **changes) -> Session:
        """Change fields of the user's live session (or a fresh one) and restart its TTL; inside
        :meth:`deferred`, the change is written later, with the answer."""
        now, user = self._clock(), self._user(key)

        def change(data: str | None) -> str:
            return _dump(replace(_load(data) if data else Session(), **changes, at=now))

        message: _Message | None = getattr(self._local, "message", None)
        if message is None:
            return _load(self.storage.update_session(user, change, now=now, since=now - self.ttl_s))
        return _load(message.change(user, change, since=now - self.ttl_s))

    @contextmanager
    def deferred(self) -> Iterator[Callable[[], list[Write]]]:
        """Collect this thread's session reads and changes for one message instead of going to the
        database each time: each user's row is read once, and the function yielded gives the
        writes of the changes, to be made with the answer (``storage.write_together``). Changes
        never written (the answer failed) are dropped."""
        self._local.message = message = _Message(self.storage)

        def writes() -> list[Write]:
            now = self._clock()
            return [self.storage.session_write(user, change, now=now, since=now - self.ttl_s, seen=message.seen[user])
                    for user, change in message.changes.items()]

        try:
            yield writes
        finally:
            self._local.message = None

    def forget(self, key: SessionKey) -> None:
        self.storage.forget_session(self._user(key))

    def __len__(self) -> int:
        return self.storage.count_sessions(since=self._clock() - self.ttl_s)

    def _user(self, key: SessionKey) -> str:
        return self.storage.hash("\x1f".join(key))


class _Message:
    """One message's view of the sessions: each user's row as read (once), and the changes made."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.seen: dict[str, Any] = {}  # user → the row as read, for the write's compare-and-set
        self.changes: dict[str, Callable[[str | None], str]] = {}

    def data(self, user: str, since: float) -> str | None:
        """The user's live session data with this message's changes applied."""
        change = self.changes.get(user)
        return change(self._read(user, since)) if change else self._read(user, since)

    def change(self, user: str, change: Callable[[str | None], str], *, since: float) -> str:
        """Add ``change`` after the user's earlier ones; the data they make."""
        previous = self.changes.get(user)
        self.changes[user] = (lambda data: change(previous(data))) if previous else change
        return self.changes[user](self._read(user, since))

    def _read(self, user: str, since: float) -> str | None:
        if user not in self.seen:
            self.seen[user] = self.storage.session_row(user)
        return live(self.seen[user], since)


def _dump(session: Session) -> str:
    # By hand, not dataclasses.asdict: that deep-copies every field, on every message.
    return json.dumps({"topic": session.topic, "focus": session.focus, "shown": session.shown,
                       "answered": session.answered, "doc_id": session.doc_id, "at": session.at},
                      ensure_ascii=False)


def _load(text: str) -> Session:
    data = json.loads(text)
    data["shown"] = tuple(tuple(pair) for pair in data.get("shown", ()))
    if data.get("answered"):
        data["answered"] = tuple(data["answered"])
    return Session(**data)
