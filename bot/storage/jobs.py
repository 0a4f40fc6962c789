"""The ``jobs`` table: background re-index jobs, their state, build stage and counts, so that
any gunicorn worker can answer ``GET /admin/jobs/<id>``. A job whose heartbeat is older than
``stale_after_s`` belonged to a worker that died and is marked failed the next time jobs are
read; at most one job is active at a time. The runner is :mod:`bot.jobs`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from dataclasses import dataclass

from bot.errors import BotError
from bot.storage.base import Database
from bot.storage.schema import register_schema

log = logging.getLogger(__name__)

STALE_AFTER_S = 120.0  # many missed heartbeats: the worker is gone, not merely busy
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

register_schema("jobs", """
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
""")
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
    """The jobs table of ``db``; any thread or process may use it."""

    def __init__(self, db: Database, *, stale_after_s: float = STALE_AFTER_S, build_lock: int | None = None) -> None:
        self.db = db
        self.stale_after_s = stale_after_s
        # PostgreSQL: the advisory lock a host holds while it runs a job (bot.storage.shared.BuildLease);
        # an active job while nobody holds it lost its host.
        self.build_lock = build_lock

    def create(self, kind: str = "reindex") -> Job:
        """Queue a new job.

        :raise JobConflict: another job is queued or running (in any worker).
        """
        now = time.time()
        job_id = uuid.uuid4().hex[:12]
        with self.db.transaction() as conn:
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
        with self.db.transaction() as conn:
            self._fail_stale(conn, time.time())
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job(*row) if row else None

    def recent(self, limit: int = 10) -> list[Job]:
        """The newest jobs first (stale ones failed first)."""
        with self.db.transaction() as conn:
            self._fail_stale(conn, time.time())
            rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
            return [Job(*row) for row in rows.fetchall()]

    def update(self, job_id: str, **fields: object) -> None:
        """Set ``fields`` (state, stage, done, total, version, error, finished) and beat the heart."""
        names = set(fields) - {"state", "stage", "done", "total", "version", "error", "finished"}
        if names:
            raise ValueError(f"unknown job fields: {', '.join(sorted(names))}")
        assignments = "".join(f"{name} = ?, " for name in fields)
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE jobs SET {assignments}heartbeat = ? WHERE id = ?",
                         (*fields.values(), time.time(), job_id))

    def fail_orphans(self) -> int:
        """Fail every active job; only for the holder of the build lease, who knows that whoever ran
        them lost it (their host died). Returns how many."""
        with self.db.transaction() as conn:
            return self._fail(conn, "state IN (?, ?)", ACTIVE, _ORPHANED)

    def claim(self) -> Job | None:
        """Take the oldest queued job and mark it running (PostgreSQL, by the holder of the build
        lease): ``FOR UPDATE SKIP LOCKED`` lets claimers pass each other's row, never share one."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1"
                               " FOR UPDATE SKIP LOCKED").fetchone()
            if row is None:
                return None
            conn.execute("UPDATE jobs SET state = 'running', stage = 'parse', heartbeat = ? WHERE id = ?",
                         (time.time(), row[0]))
            return Job(*conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", row).fetchone())

    def beat(self, job_id: str) -> None:
        """Record that the job's thread is alive."""
        self.update(job_id)

    def _fail_stale(self, conn: sqlite3.Connection, now: float) -> None:
        self._fail(conn, "state IN (?, ?) AND heartbeat < ?", (*ACTIVE, now - self.stale_after_s),
                   f"the worker running this job stopped (no sign of life for {self.stale_after_s:.0f} s); "
                   "start the re-index again")
        if self.build_lock is not None:  # running, but no host holds the lease: its host died (PostgreSQL)
            self._fail(conn, f"state = 'running' AND NOT EXISTS ({_LEASE_HELD})",
                       (self.build_lock >> 32, self.build_lock & 0xFFFFFFFF), _ORPHANED)

    def _fail(self, conn: sqlite3.Connection, where: str, params: tuple, error: str) -> int:
        count = conn.execute(f"UPDATE jobs SET state = 'failed', finished = ?, error = ? WHERE {where}",
                             (time.time(), error, *params)).rowcount
        if count:
            log.warning("%d job(s) marked failed: %s", count, error)
        return count


_ORPHANED = ("the host running this job stopped (it no longer holds the build lock); "
             "the index it served is unchanged: start the re-index again")
#: Whether a session holds the advisory lock with a 64-bit key (PostgreSQL splits it into two oids).
_LEASE_HELD = ("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
               " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
               " AND classid::bigint = ? AND objid::bigint = ?")
