"""bot.storage.shared on a real PostgreSQL: the shared library, the packed versions, the
served pointer and its history, the notifications that announce each change, the build lease,
and the jobs a dead host leaves behind."""

from __future__ import annotations

import hashlib
import time

import psycopg
import pytest

from bot.storage.pg import BUILD_LOCK, PgStorage
from bot.storage.shared import CHANNEL, BuildLease, LeaseLost, Listener, SharedLibrary


@pytest.fixture
def storage(pg_url):
    store = PgStorage(pg_url)
    yield store
    store.close()


@pytest.fixture
def shared(storage) -> SharedLibrary:
    return SharedLibrary(storage)


def _record(doc_id: str, original: bytes, title: str = "标题") -> dict:
    return {"doc_id": doc_id, "title": title, "year": 2020, "format": "txt",
            "sha256": hashlib.sha256(original).hexdigest()}


def test_documents_are_stored_replaced_and_removed(shared):
    shared.put_document(_record("plan", b"one"), b"one")
    shared.put_document(_record("law", b"\x00\xff binary"), b"\x00\xff binary")
    shared.put_document(_record("plan", b"two", title="新标题"), b"two")
    assert shared.documents() == {"plan": _record("plan", b"two", title="新标题"),
                                  "law": _record("law", b"\x00\xff binary")}
    assert shared.original("law") == (_record("law", b"\x00\xff binary"), b"\x00\xff binary")
    assert shared.remove_document("plan") is True and shared.remove_document("plan") is False
    assert shared.original("plan") is None and list(shared.documents()) == ["law"]


def test_the_pointer_names_only_stored_packs_and_keeps_its_history(shared):
    assert shared.current() is None and shared.versions() == []
    shared.put_version("v1", b"pack-1", "sha-1", {"counts": {"documents": 1}}, keep=5)
    with pytest.raises(LookupError, match="'v2' is not stored"):
        shared.move_current("v2", "build")
    assert shared.current() is None
    shared.move_current("v1", "build")
    shared.put_version("v2", b"pack-2", "sha-2", {}, keep=5)
    assert shared.current() == "v1"  # a stored pack is not served until the pointer moves
    shared.move_current("v2", "build")
    shared.move_current("v1", "rollback")
    assert shared.current() == "v1" and shared.pack("v2") == (b"pack-2", "sha-2")
    assert [(v, why) for v, why, _ in shared.history()] == [("v1", "rollback"), ("v2", "build"), ("v1", "build")]


def test_old_packs_are_dropped_but_never_the_served_one(shared):
    shared.put_version("v1", b"1", "s", {}, keep=2)
    shared.move_current("v1", "build")
    for version in ("v2", "v3", "v4"):
        shared.put_version(version, b"x", "s", {}, keep=2)
    assert shared.versions() == ["v1", "v3", "v4"] and shared.pack("v2") is None


def test_each_change_is_announced_when_it_commits(pg_url, shared):
    listener = Listener(pg_url)
    try:
        assert listener.wait(0.05) is False
        shared.put_document(_record("plan", b"one"), b"one")
        assert listener.wait(2.0) is True
        shared.put_version("v1", b"1", "s", {}, keep=2)
        assert listener.wait(0.05) is False  # a stored pack is no news until the pointer names it
        shared.move_current("v1", "build")
        assert listener.wait(2.0) is True
        with pytest.raises(LookupError):
            shared.move_current("v9", "build")
        assert listener.wait(0.2) is False  # rolled back: never announced
    finally:
        listener.close()
    assert CHANNEL == "policybot_shared"


def test_one_build_lease_at_a_time_and_a_dead_holder_loses_it(pg_url):
    first = BuildLease.take(pg_url)
    assert first is not None and BuildLease.take(pg_url) is None
    first.release()
    second = BuildLease.take(pg_url)
    assert second is not None
    second.conn.close()  # the holder's session ends without unlocking (its host was killed)
    deadline = time.monotonic() + 5
    while (third := BuildLease.take(pg_url)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert third is not None
    third.release()


def test_a_builder_learns_that_it_lost_the_lease_before_it_publishes(pg_url):
    lease = BuildLease.take(pg_url)
    lease.check()  # held: fine
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the database restarted under it
        conn.execute("SELECT pg_terminate_backend(%s)", (lease.conn.info.backend_pid,))
    with pytest.raises(LeaseLost, match="the build lock was lost"):
        lease.check()
    lease.release()  # closing a broken lease is quiet
    other = BuildLease.take(pg_url)
    other.conn.execute("SELECT pg_advisory_unlock_all()")
    with pytest.raises(LeaseLost, match="the build was not published"):
        other.check()
    other.release()


def test_a_job_whose_host_lost_the_lease_is_failed_when_read(pg_url, storage):
    lease = BuildLease.take(pg_url)
    storage.jobs.fail_orphans()
    job = storage.jobs.create()
    claimed = storage.jobs.claim()
    assert claimed is not None and claimed.id == job.id and claimed.state == "running"
    assert storage.jobs.claim() is None  # nothing else queued
    assert storage.jobs.get(job.id).state == "running"  # its host holds the lease: alive
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the host dies: PostgreSQL ends its session
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                     " AND objid::bigint = %s", (BUILD_LOCK & 0xFFFFFFFF,))
    deadline = time.monotonic() + 5
    while (found := storage.jobs.get(job.id)).state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found.state == "failed" and "no longer holds the build lock" in found.error
    assert storage.jobs.create().state == "queued"  # no longer blocks a new one
    lease.conn.close()


def test_claims_skip_a_row_another_transaction_holds(pg_url, storage):
    job = storage.jobs.create()
    with psycopg.connect(pg_url) as other, other.transaction():
        other.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (job.id,))
        assert storage.jobs.claim() is None  # skipped, not waited for
    assert storage.jobs.claim().id == job.id
