"""The one way channels get an answer: :meth:`Service.ask` runs the dialog once per
message (a platform retry gets the stored reply), logs the question and records
metrics. Built once per process by :func:`init_app` and kept in
``app.extensions["policybot"]``; :func:`get_service` finds it.

The searcher comes through a provider callable (:class:`bot.searchers.SearcherProvider`)
that opens the published index on first use, so the dialog never holds an index
itself and a later hot reload only has to change the provider.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from bot.config import Settings, settings_of
from bot.domain import UNLIMITED, Answer, Citation, Limit, Question
from bot.errors import Refused
from bot.metrics import Metrics
from bot.searchers import SearcherProvider
from bot.singleflight import SingleFlight
from bot.storage import Admission, LogEntry, Storage, Write, database_errors, open_storage
from bot.storage.curation import Curation, Served
from index.domain import Document, Hit
from index.errors import IndexNotFound

if TYPE_CHECKING:
    from bot.dialog import Dialog
    from bot.replica import Replica
    from bot.sessions import SessionMemory, SharedSessionMemory
    from index.search import Searcher

log = logging.getLogger(__name__)
EXTENSION = "policybot"


class Service:
    """Answers, deduplicates, logs and counts; one instance per process, shared by all threads."""

    def __init__(self, *, searchers: SearcherProvider, dialog: Dialog, storage: Storage, metrics: Metrics,
                 sessions: SharedSessionMemory | None = None, stale_after_s: float = 30.0,
                 poll_s: float = 0.02, curation: Curation | None = None, replica: Replica | None = None) -> None:
        self.searchers = searchers
        self.replica = replica  # several hosts: this host's copy of the shared library and index
        self.dialog = dialog
        self.storage = storage
        self.curation = curation or Curation(storage)  # FAQ, ratings, confirmed answers
        self.metrics = metrics
        self.sessions = sessions  # the dialog's shared memory: its writes join the answer's transaction
        self.stale_after_s = stale_after_s
        self.poll_s = poll_s
        self._flights: SingleFlight[Answer] = SingleFlight()  # this worker's threads compute a message once

    def ask(self, question: Question, limit: Limit = UNLIMITED, *, dedupe_key: str | None = None,
            admission: Admission | None = None) -> Answer:
        """Answer ``question`` within ``limit``, computing and logging it once per ``dedupe_key``.

        On one host (SQLite) the message is computed, then written with its answer, log row and
        session in one transaction; a retry arriving while its first attempt is being computed in
        another worker computes it too, and the first written wins. With a storage that
        :attr:`~bot.storage.Dedup.claims_first` (several hosts), a retry waits for the first
        attempt's answer; one whose first attempt failed computes it again. ``admission`` (the
        message's signed pair and rate count) is decided with the message's first read or write.

        :raise RetrievalError: no index is published, or it cannot be loaded.
        :raise Refused: the admission refused the message (replayed, or over the rate limit).
        """
        self._prune_due()
        if dedupe_key is None:
            with self._deferred_sessions() as session_writes:
                answer, entry, served = self._compute(question, limit)
            self.storage.finish(None, None, entry, writes=self._writes(session_writes, served))
            return answer
        key = f"{question.channel}:{dedupe_key}"
        if not self.storage.claims_first:
            return self._flights.do(key, lambda: self._ask_then_settle(key, question, limit, admission))
        delay = self.poll_s
        while True:
            claim = self.storage.claim(key, stale_after_s=self.stale_after_s, admission=admission)
            admission = None  # decided once; polling a pending claim only reads it again
            if claim.state in ("replayed", "limited"):
                raise Refused(claim.state)
            if claim.state == "claimed":
                return self._compute_claimed(key, question, limit)
            if claim.state == "done":
                self.metrics.record_retry(question.channel)
                return load_answer(claim.answer)
            time.sleep(delay)  # another worker is computing it: poll the row, backing off a little
            delay = min(delay * 2, 0.25)

    def welcome(self, limit: Limit = UNLIMITED) -> Answer:
        """The greeting for a new subscriber (not logged: it answers no question)."""
        return Answer(text=self.dialog.welcome(limit), kind="welcome")

    def documents(self) -> tuple[Document, ...]:
        """The published documents, newest first; () while no index is loaded or published."""
        try:
            return self.searchers().documents
        except IndexNotFound:
            return ()

    def close(self) -> None:
        self.searchers.close()
        if self.replica is not None:
            self.replica.close()
        self.storage.close()

    def _ask_then_settle(self, key: str, question: Question, limit: Limit, admission: Admission | None) -> Answer:
        """One host: read, compute, then one write transaction for everything (the storage's
        class docstring says why two workers may both compute a message given to both at once)."""
        seen = self.storage.peek(key, admission)
        if seen.state in ("replayed", "limited"):
            raise Refused(seen.state)
        if seen.state == "done":
            self.metrics.record_retry(question.channel)
            return load_answer(seen.answer)
        with self._deferred_sessions() as session_writes:
            answer, entry, served = self._compute(question, limit)
        stored = self.storage.settle(key, dump_answer(answer), entry, writes=self._writes(session_writes, served),
                                     admission=admission)
        if stored.state == "replayed":
            raise Refused("replayed")
        if stored.state == "done":
            self.metrics.record_retry(question.channel)
            return load_answer(stored.answer)
        return answer

    def _compute_claimed(self, key: str, question: Question, limit: Limit) -> Answer:
        try:
            with self._deferred_sessions() as session_writes:
                answer, entry, served = self._compute(question, limit)
        except BaseException:
            self.storage.release(key)  # let a retry try again instead of waiting for a stale claim
            raise
        self.storage.finish(key, dump_answer(answer), entry, writes=self._writes(session_writes, served))
        return answer

    def _prune_due(self) -> None:
        """Rows past keeping go at most once an hour per process, in transactions of their own,
        before this message's writes begin (never inside them)."""
        try:
            self.storage.prune_due()
            self.curation.prune_due()
        except database_errors() as exc:  # the message's own writes say whether the database is usable
            log.error("deleting old rows from %s failed: %s", self.storage.path, exc)

    def _deferred_sessions(self) -> AbstractContextManager[Callable[[], list[Write]] | None]:
        """The dialog's session changes, held back to be written with the answer."""
        return self.sessions.deferred() if self.sessions is not None else nullcontext()

    def _writes(self, session_writes: Callable[[], list[Write]] | None, served: Served | None) -> list[Write]:
        """What joins the answer's one write: the dialog's session changes and the served answer that
        feedback will name."""
        writes = session_writes() if session_writes is not None else []
        return writes if served is None else [*writes, self.curation.served_write(served)]

    def _compute(self, question: Question, limit: Limit) -> tuple[Answer, LogEntry, Served | None]:
        channel, started = question.channel, time.perf_counter()
        try:
            answer = self.dialog.respond(question, limit)
        except Exception:
            self.metrics.record_answer(channel, "error", time.perf_counter() - started, abstained=False)
            raise
        seconds = time.perf_counter() - started
        self.metrics.record_answer(channel, answer.kind, seconds, abstained=answer.abstained)
        top = answer.hits[0] if answer.hits else None
        entry = LogEntry(
            channel=question.channel, user_hash=self.storage.hash(question.user_id),
            question=question.text.strip(), kind=answer.kind, abstained=answer.abstained,
            top_doc=top.doc_id if top else None, top_item=top.item_locator if top else None,
            confidence=answer.confidence, latency_ms=round(seconds * 1000, 2),
        )
        if answer.kind not in RATED_KINDS:
            return answer, entry, None
        served = _served(question, answer, entry.user_hash)
        return replace(answer, extra={**answer.extra, "answer_id": served.answer_id}), entry, served


#: The replies a user may rate (有用 / 没用, 👍 / 👎): answers, declines and FAQ answers.
RATED_KINDS = ("answer", "abstain", "faq")


def _served(question: Question, answer: Answer, user_hash: str) -> Served:
    """What feedback on ``answer`` will name: a fresh random id, the question and the top item."""
    top = answer.hits[0] if answer.hits and not answer.abstained else None
    return Served(answer_id=secrets.token_urlsafe(12), channel=question.channel, user_hash=user_hash,
                  question=question.text.strip(), kind=answer.kind, top_doc=top.doc_id if top else None,
                  top_item=top.item_locator if top else None, top_title=top.item_title if top else None,
                  ref=top.ref if top else None)


def dump_answer(answer: Answer) -> str:
    """An :class:`Answer` as JSON text, for the dedupe table."""
    # The encoder walks the dataclasses itself: dataclasses.asdict deep-copies every field first,
    # which cost more than all the database work of a message.
    return json.dumps(answer, ensure_ascii=False, default=_fields)


def _fields(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return str(value)


def load_answer(text: str) -> Answer:
    """The :class:`Answer` that :func:`dump_answer` stored."""
    data: dict[str, Any] = json.loads(text)
    return Answer(**{
        **data,
        "citations": tuple(Citation(**c) for c in data["citations"]),
        "hits": tuple(Hit(**{**h, "sentences": tuple(h["sentences"])}) for h in data["hits"]),
    })


def build_dialog(settings: Settings, searchers: Callable[[], Searcher], *,
                 memory: SessionMemory | SharedSessionMemory | None = None,
                 curation: Curation | None = None) -> Dialog:
    """The dialog as the settings describe it: the one place it is assembled, for the server,
    ``policybot ask`` and the scripts alike. ``curation`` (default: the data dir's database) holds
    the FAQ it answers from and the ratings of 有用 / 没用."""
    from bot.dialog import Dialog, DialogSettings

    dialog_settings = DialogSettings(contact_text=settings.contact_text or "")
    if curation is None:
        curation = Curation(open_storage(settings))
    return Dialog(searchers, settings=dialog_settings, memory=memory, curation=curation)


def init_app(app: Flask) -> Service:
    """Build the process's services from the app's settings and keep them in ``app.extensions``."""
    from bot.dialog import DialogSettings
    from bot.sessions import SharedSessionMemory

    settings = settings_of(app)
    searchers = SearcherProvider(settings.data, embedder=settings.embedder)
    storage = open_storage(settings)
    curation = Curation(storage)
    try:
        storage.prune_due()  # at start, then hourly as messages come (Service._prune_due)
        curation.prune_due()
    except database_errors() as exc:
        log.error("the question log at %s cannot be opened: %s", storage.path, exc)
    # Follow-ups must work whichever worker a user's next message reaches.
    memory = SharedSessionMemory(storage, ttl_s=DialogSettings().followup_ttl_s)
    service = Service(
        searchers=searchers,
        dialog=build_dialog(settings, searchers, memory=memory, curation=curation),
        storage=storage,
        metrics=Metrics(),
        sessions=memory,
        curation=curation,
        replica=_replica(settings, storage),
    )
    app.extensions[EXTENSION] = service
    return service


def _replica(settings: Settings, storage: Storage) -> Replica | None:
    """This host's copy of the shared library and index, when the state is in PostgreSQL."""
    if not settings.database_url:
        return None
    from bot.replica import Replica

    return Replica(storage, settings.data, keep=settings.keep_versions)  # type: ignore[arg-type]


def get_service(app: Flask | None = None) -> Service:
    """The :class:`Service` of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
