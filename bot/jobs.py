"""Background re-index jobs of the admin API: :func:`start_reindex` runs
:func:`index.library.build_library_index` in a thread of the worker that was asked,
and :class:`JobStore` keeps each job's state in SQLite so that any gunicorn worker
can answer ``GET /admin/jobs/<id>``.

The state lives in ``<POLICYBOT_DATA>/jobs.sqlite3`` (its own file: the question log's
schema belongs to :mod:`bot.storage`). A running job writes a heartbeat every
:data:`HEARTBEAT_S` seconds; a job whose heartbeat is older than ``stale_after_s``
belonged to a worker that died (killed, restarted mid-build) and is marked failed
the next time jobs are read. At most one job is active at a time: a second request
gets :class:`JobConflict` (the API answers 409).
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.errors import BotError
from bot.storage import immediate_transaction, initialise_database
from index.errors import BuildLocked, RetrievalError

log = logging.getLogger(__name__)

FILENAME = "jobs.sqlite3"
HEARTBEAT_S = 5.0
STALE_AFTER_S = 120.0  # many missed heartbeats: the worker is gone, not merely busy
REPORT_EVERY_S = 0.25  # progress rows written at most this often (embedding reports per batch)
KEEP_JOBS = 200
ACTIVE = ("queued", "running")

#: Share of the whole job each build stage covers, as (start, end) of the 0..1 progress.
STAGES: dict[str, tuple[float, float]] = {
    "queued": (0.0, 0.0),
    "parse": (0.0, 0.05),
    "embed": (0.05, 0.9),
    "bm25": (0.9, 0.98),
    "publish": (0.98, 1.0),
    "done": (1.0, 1.0),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    stage      TEXT NOT NULL,
    done       INTEGER NOT NULL DEFAULT 0,
    total      INTEGER NOT NULL DEFAULT 0,
    version    TEXT,
    error      TEXT,
    created    REAL NOT NULL,   -- unix time
    heartbeat  REAL NOT NULL,   -- last sign of life of the thread running it
    finished   REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""
_COLUMNS = "id, kind, state, stage, done, total, version, error, created, heartbeat, finished"


class JobConflict(BotError):
    """Another job is queued or running; ``job`` is that one."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


@dataclass(frozen=True)
class Job:
    """One background job as stored: its state, build stage and counts, and the outcome."""

    id: str
    kind: str
    state: str  # queued | running | done | failed
    stage: str
    done: int
    total: int
    version: str | None
    error: str | None
    created: float
    heartbeat: float
    finished: float | None

    @property
    def progress(self) -> float:
        """How far the job is, 0..1, from its stage and the stage's done/total."""
        if self.state == "done":
            return 1.0
        start, end = STAGES.get(self.stage, (0.0, 0.0))
        share = self.done / self.total if self.total > 0 else 0.0
        return round(start + (end - start) * min(share, 1.0), 3)

    def to_json(self) -> dict:
        """The ``GET /admin/jobs/<id>`` shape."""
        return {"job": self.id, "kind": self.kind, "state": self.state, "progress": self.progress,
                "stage": self.stage, "done": self.done, "total": self.total, "version": self.version,
                "error": self.error, "created": self.created, "finished": self.finished}


class JobStore:
    """The jobs table at ``path``; one short connection per call, so any thread or process may use it."""

    def __init__(self, path: Path, *, stale_after_s: float = STALE_AFTER_S) -> None:
        self.path = Path(path)
        self.stale_after_s = stale_after_s

    def create(self, kind: str = "reindex") -> Job:
        """Queue a new job.

        :raise JobConflict: another job is queued or running (in any worker).
        """
        now = time.time()
        job_id = uuid.uuid4().hex[:12]
        with self._transaction() as conn:
            self._fail_stale(conn, now)
            active = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state IN (?, ?) ORDER BY created"
                                  " LIMIT 1", ACTIVE).fetchone()
            if active is not None:
                job = Job(*active)
                raise JobConflict(f"job {job.id} is still {job.state}; wait for it to finish", job)
            conn.execute("INSERT INTO jobs (id, kind, state, stage, created, heartbeat)"
                         " VALUES (?, ?, 'queued', 'queued', ?, ?)", (job_id, kind, now, now))
            # Old jobs are only history; keep the table small.
            conn.execute("DELETE FROM jobs WHERE id NOT IN (SELECT id FROM jobs ORDER BY created DESC"
                         " LIMIT ?)", (KEEP_JOBS,))
            return Job(*conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def get(self, job_id: str) -> Job | None:
        """The job ``job_id`` (a stale one is failed first), or None."""
        with self._transaction() as conn:
            self._fail_stale(conn, time.time())
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job(*row) if row else None

    def recent(self, limit: int = 10) -> list[Job]:
        """The newest jobs first (stale ones failed first)."""
        with self._transaction() as conn:
            self._fail_stale(conn, time.time())
            rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
            return [Job(*row) for row in rows.fetchall()]

    def update(self, job_id: str, **fields: object) -> None:
        """Set ``fields`` (state, stage, done, total, version, error, finished) and beat the heart."""
        names = set(fields) - {"state", "stage", "done", "total", "version", "error", "finished"}
        if names:
            raise ValueError(f"unknown job fields: {', '.join(sorted(names))}")
        assignments = "".join(f"{name} = ?, " for name in fields)
        with self._transaction() as conn:
            conn.execute(f"UPDATE jobs SET {assignments}heartbeat = ? WHERE id = ?",
                         (*fields.values(), time.time(), job_id))

    def beat(self, job_id: str) -> None:
        """Record that the job's thread is alive."""
        self.update(job_id)

    def _fail_stale(self, conn: sqlite3.Connection, now: float) -> None:
        count = conn.execute(
            "UPDATE jobs SET state = 'failed', finished = ?, error = ? WHERE state IN (?, ?) AND heartbeat < ?",
            (now, f"the worker running this job stopped (no sign of life for {self.stale_after_s:.0f} s); "
                  "start the re-index again", *ACTIVE, now - self.stale_after_s)).rowcount
        if count:
            log.warning("%d job(s) marked failed: their worker stopped", count)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            # Every time (it is cheap): the file may have been deleted since, and must not lose its table.
            initialise_database(conn, SCHEMA, name="jobs")
            # IMMEDIATE: check-then-insert in create() must not race another worker.
            with immediate_transaction(conn):
                yield conn
        finally:
            conn.close()


class _Reporter:
    """The build's progress callback: writes the stage and counts, at most every :data:`REPORT_EVERY_S`."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._stage, self._last = "", 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == self._stage and done < total and now - self._last < REPORT_EVERY_S:
            return
        self._stage, self._last = stage, now
        self.store.update(self.job_id, stage=stage, done=done, total=total)
        if stage == "bm25" and done >= total:
            self.store.update(self.job_id, stage="publish", done=0, total=1)


def start_reindex(store: JobStore, data_dir: Path, *, embedder: str, keep: int) -> Job:
    """Queue a re-index of the library and run it in a background thread of this process.

    :raise JobConflict: a job is already queued or running.
    """
    job = store.create("reindex")
    thread = threading.Thread(target=run_reindex, args=(store, job.id, Path(data_dir)),
                              kwargs={"embedder": embedder, "keep": keep},
                              name=f"policybot-reindex-{job.id}", daemon=True)
    thread.start()
    return job


def run_reindex(store: JobStore, job_id: str, data_dir: Path, *, embedder: str, keep: int) -> None:
    """Run job ``job_id`` to its end (done or failed); never raises."""
    from index.library import build_library_index

    stop = threading.Event()
    heart = threading.Thread(target=_beat, args=(store, job_id, stop), name=f"policybot-beat-{job_id}",
                             daemon=True)
    try:
        store.update(job_id, state="running", stage="parse", done=0, total=0)
        heart.start()
        version = build_library_index(data_dir, embedder=embedder, progress=_Reporter(store, job_id), keep=keep)
    except BuildLocked:
        _fail(store, job_id, "another index build is running (a CLI `policybot index build`?); "
                             "start the re-index again when it has finished")
    except RetrievalError as exc:
        _fail(store, job_id, str(exc))
    except Exception as exc:  # a background thread has nobody else to report to
        problem = storage_problem(exc, data_dir)
        if problem is None:
            log.exception("re-index job %s failed", job_id)
        else:
            log.error("re-index job %s failed: %s", job_id, problem)
        _fail(store, job_id, problem or f"internal error: {type(exc).__name__}: {exc}")
    else:
        log.info("re-index job %s published index version %s", job_id, version)
        store.update(job_id, state="done", stage="done", done=1, total=1, version=version,
                     finished=time.time())
    finally:
        stop.set()
        if heart.is_alive():
            heart.join(timeout=HEARTBEAT_S)


def storage_problem(exc: BaseException, data_dir: Path) -> str | None:
    """What to tell the admin (in Chinese, then English) when ``exc`` means the data directory
    cannot be written: permissions, a read-only file system, a full disk. None otherwise."""
    if isinstance(exc, sqlite3.OperationalError) and any(
            word in str(exc) for word in ("readonly", "read-only", "unable to open", "disk I/O", "full")):
        where, why = str(data_dir), str(exc)
    elif isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        where, why = str(exc.filename or data_dir), exc.strerror or str(exc)
    else:
        return None
    return (f"数据目录无法写入：{where}（{why}）。请检查 POLICYBOT_DATA={data_dir} 的写权限和磁盘空间。"
            f" The data directory cannot be written: {where} ({why}).")


_STORAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _fail(store: JobStore, job_id: str, message: str) -> None:
    try:
        store.update(job_id, state="failed", error=message, finished=time.time())
    except sqlite3.Error:
        # The row stays "running" and is failed as stale later; nothing more can be done here.
        log.exception("re-index job %s: could not record its failure (%s)", job_id, message)


def _beat(store: JobStore, job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            store.beat(job_id)
        except sqlite3.Error:
            log.warning("re-index job %s: heartbeat not written", job_id, exc_info=True)
