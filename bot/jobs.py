"""Background re-index jobs of the admin API: :func:`start_reindex` runs
:func:`index.library.build_library_index` in a thread of the worker that was asked, and
reports its progress to the ``jobs`` table (:class:`bot.storage.JobStore`), so that any
gunicorn worker can answer ``GET /admin/jobs/<id>``.

A running job writes a heartbeat every :data:`HEARTBEAT_S` seconds; a job whose heartbeat
is older than the store's ``stale_after_s`` belonged to a worker that died (killed,
restarted mid-build) and is marked failed the next time jobs are read. At most one job is
active at a time: a second request gets :class:`JobConflict` (the API answers 409).

With several hosts (a :class:`~bot.replica.Replica`), a job runs once across all of them: the
host asked takes the build lease first (:func:`claim_shared_job`; another host's request then
gets :class:`BuildLocked`), queues and claims the job, and builds through the replica, which
publishes for every host; the lease is released after the job's outcome is written, so a job
still running while nobody holds the lease lost its host.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.storage import Job, JobConflict, JobStore, database_errors
from bot.storage.shared import BuildLease, LeaseLost
from index.errors import BuildLocked, RetrievalError

if TYPE_CHECKING:
    from bot.replica import Replica
    from index.build import Progress

__all__ = ["Job", "JobConflict", "JobStore", "claim_shared_job", "run_reindex", "start_reindex", "storage_problem"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
REPORT_EVERY_S = 0.25  # progress rows written at most this often (embedding reports per batch)


class _Reporter:
    """The build's progress callback: writes the stage and counts, at most every :data:`REPORT_EVERY_S`."""

    def __init__(self, store: JobStore, job_id: str, *, also: Progress | None = None) -> None:
        self.store, self.job_id, self.also = store, job_id, also
        self._stage, self._last = "", 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.also is not None:
            self.also(stage, done, total)
        now = time.monotonic()
        if stage == self._stage and done < total and now - self._last < REPORT_EVERY_S:
            return
        self._stage, self._last = stage, now
        self.store.update(self.job_id, stage=stage, done=done, total=total)
        if stage == "bm25" and done >= total:
            self.store.update(self.job_id, stage="publish", done=0, total=1)


def start_reindex(store: JobStore, data_dir: Path, *, embedder: str, keep: int,
                  replica: Replica | None = None) -> Job:
    """Queue a re-index of the library and run it in a background thread of this process; with a
    ``replica`` (several hosts), under the build lease, for every host.

    :raise JobConflict: a job is already queued or running.
    :raise BuildLocked: another host is building (several hosts).
    """
    lease = None
    if replica is None:
        job = store.create("reindex")
    else:
        lease, job = claim_shared_job(replica, store)
    thread = threading.Thread(target=run_reindex, args=(store, job.id, Path(data_dir)),
                              kwargs={"embedder": embedder, "keep": keep, "replica": replica, "lease": lease},
                              name=f"policybot-reindex-{job.id}", daemon=True)
    thread.start()
    return job


def claim_shared_job(replica: Replica, store: JobStore) -> tuple[BuildLease, Job]:
    """Take the build lease, queue a job and claim it: whoever holds the lease runs the one build
    of all hosts; the jobs still active then lost their host (it died), so they are failed first.

    :raise JobConflict: another host runs a job (the admin page then watches that one).
    :raise BuildLocked: another host (or a CLI command) holds the lease, and no job is seen running.
    """
    try:
        lease = replica.lease()
    except BuildLocked:
        running = next((job for job in store.recent(3) if job.state in ("queued", "running")), None)
        if running is None:
            raise
        raise JobConflict(f"job {running.id} is still {running.state}; wait for it to finish", running) from None
    try:
        store.fail_orphans()
        store.create("reindex")
        job = store.claim()
        if job is None:  # nobody else may claim while the lease is ours
            raise RuntimeError("the queued job could not be claimed")
    except BaseException:
        lease.release()
        raise
    return lease, job


def run_reindex(store: JobStore, job_id: str, data_dir: Path, *, embedder: str, keep: int,
                replica: Replica | None = None, lease: BuildLease | None = None,
                progress: Progress | None = None) -> None:
    """Run job ``job_id`` to its end (done or failed), then release ``lease``; never raises.
    ``progress`` is told too (the CLI's bars)."""
    from index.library import build_library_index

    stop = threading.Event()
    heart = threading.Thread(target=_beat, args=(store, job_id, stop), name=f"policybot-beat-{job_id}",
                             daemon=True)
    report = _Reporter(store, job_id, also=progress)
    try:
        store.update(job_id, state="running", stage="parse", done=0, total=0)
        heart.start()
        if replica is None or lease is None:
            version = build_library_index(data_dir, embedder=embedder, progress=report, keep=keep)
        else:
            version = replica.build(lease, embedder=embedder, progress=report)
    except BuildLocked:
        _fail(store, job_id, "another index build is running (a CLI `policybot index build`?); "
                             "start the re-index again when it has finished")
    except (RetrievalError, LeaseLost) as exc:
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
        if lease is not None:  # after the job's outcome is written: a free lease means "nobody runs it"
            lease.release()


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
    except database_errors():
        # The row stays "running" and is failed as stale later; nothing more can be done here.
        log.exception("re-index job %s: could not record its failure (%s)", job_id, message)


def _beat(store: JobStore, job_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            store.beat(job_id)
        except database_errors():
            log.warning("re-index job %s: heartbeat not written", job_id, exc_info=True)
