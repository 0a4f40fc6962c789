"""The bot's state on a real PostgreSQL (``POLICYBOT_DATABASE_URL``): the same storage API as on
SQLite, shared by several "hosts" (several :class:`PgStorage` objects on one database), the schema
applied only by ``policybot db upgrade`` and checked when a host connects."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from bot.sessions import SharedSessionMemory
from bot.storage import FILENAME, Admission, JobConflict, LogEntry, SchemaTooNew, Storage, schema
from bot.storage.dialect import DialectError, translate, translate_schema
from bot.storage.pg import PgStorage, SchemaNotUpgraded, upgrade
from bot.storage.schema import REGISTRY, register_schema, registered

# The SQLite tests that take only a `storage`, run again here on PostgreSQL (this module's fixture).
from tests.bot.test_storage import (  # noqa: F401
    test_a_session_written_meanwhile_keeps_both_changes,
    test_a_stale_claim_is_taken_over,
    test_claim_lifecycle,
    test_old_rows_are_pruned_apart_from_the_answers,
    test_suggestions_are_kept_a_minute,
    test_unanswered_most_frequent_first,
    test_write_together_takes_one_write_per_table,
)


@pytest.fixture
def storage(pg_url):
    store = PgStorage(pg_url, salt="test-salt")
    yield store
    store.close()


def _hosts(url: str, count: int, **kwargs) -> list[PgStorage]:
    return [PgStorage(url, **kwargs) for _ in range(count)]


def _close(*stores: Storage) -> None:
    for store in stores:
        store.close()


# -- the same answers as SQLite ----------------------------------------------------------------


def _script(store: Storage, now: float) -> list:
    """Every call of the storage API once, with what each returned (``now``: both backends see the same times)."""
    out: list = []
    for n, (question, kind, abstained, doc) in enumerate([
            ("几岁入学", "answer", False, "law"), ("几岁入学", "answer", False, "law"),
            ("校服多少钱", "abstain", True, None), ("校服多少钱", "abstain", True, None),
            ("帮助", "help", False, None), ("大班额", "answer", False, "plan")]):
        store.log_question(LogEntry("wechat", f"h{n % 2}", question, kind, abstained, doc,
                                    "第11条" if doc else None, 0.5, 3.0, asked_at=now - n * 3600))
    stats = store.stats(since=now - 86400)
    out += [json.dumps([stats.per_day, stats.searches, stats.answered, stats.cited], ensure_ascii=False),
            [(u.question, u.count, u.last_asked) for u in store.unanswered(since=0)],
            [(e.question, e.abstained, e.asked_at) for e in store.questions()]]
    out += [store.claim("m1", stale_after_s=30).state, store.claim("m1", stale_after_s=30).state]
    store.finish("m1", '{"text": "六周岁"}', LogEntry("wechat", "h", "q", "answer", False, None, None, 0.9, 1.0,
                                                       asked_at=now))
    out += [store.claim("m1", stale_after_s=30), store.claim_nonce("wechat", "1", "n", "d"),
            store.claim_nonce("wechat", "1", "n", "d"), store.claim_nonce("wechat", "1", "n", "other")]
    out += [store.count_request("c", window_s=3600) for _ in range(3)]
    for nonce, digest in (("n2", "d"), ("n2", "other"), ("n3", "d")):  # one write: nonce, rate and claim
        admission = Admission(nonce=("wechat", "2", nonce, digest), rate=("c2", 3600, 1))
        out += [store.claim(f"m-{nonce}", stale_after_s=30, admission=admission), admission.nonce_ok]
    store.remember("late", "一"), store.remember("late", "二")
    out += [store.recall("late"), store.recall("none")]
    grow = lambda data: (data or "") + "+"  # noqa: E731
    out += [store.update_session("u", grow, now=now, since=now - 300),
            store.update_session("u", grow, now=now, since=now - 300),
            store.load_session("u", since=now - 300), store.count_sessions(since=now - 300)]
    store.forget_session("u")
    out.append(store.load_session("u", since=0))
    job = store.jobs.create()
    with pytest.raises(JobConflict):
        store.jobs.create()
    store.jobs.update(job.id, state="running", stage="embed", done=5, total=10)
    out.append(store.jobs.get(job.id).progress)
    store.tokens.set("token", {"access_token": "abc"}, ttl=7200)
    out += [store.tokens.get("token"), store.tokens.lease("next", 10), store.tokens.lease("next", 10)]
    store.tokens.release("next")
    out.append(store.tokens.lease("next", 10))
    return out


def test_the_storage_api_answers_as_on_sqlite(storage, tmp_path):
    sqlite = Storage(tmp_path / FILENAME, salt="test-salt")
    try:
        now = time.time()
        assert _script(storage, now) == _script(sqlite, now)
    finally:
        sqlite.close()


def test_counts_are_numbers_not_decimals(storage):
    storage.log_question(LogEntry("web", "h", "q", "abstain", True, None, None, 0.1, 1.0))
    per_day = storage.stats(since=0).per_day
    assert [type(n) for n in next(iter(per_day.values()))] == [int, int]  # SUM over BIGINT is numeric


# -- several hosts on one database -------------------------------------------------------------


def _at_once(step, args: list) -> list:
    """``step(arg)`` for every arg in its own thread, released together; the results (errors raised)."""
    barrier = threading.Barrier(len(args))

    def run(arg):
        barrier.wait()
        return step(arg)

    with ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(run, args, timeout=60))


def test_first_claims_of_many_hosts_at_once(pg_url):
    hosts = _hosts(pg_url, 8)
    try:
        states = _at_once(lambda host: host.claim("first", stale_after_s=30).state, hosts)
    finally:
        _close(*hosts)
    assert sorted(states) == ["claimed"] + ["pending"] * 7


def test_one_signed_pair_with_two_bodies_at_once_passes_once(pg_url):
    hosts = _hosts(pg_url, 6)
    try:
        passed = _at_once(lambda n: hosts[n].claim_nonce("wechat", "1", "n", f"body-{n}"), list(range(6)))
        counts = _at_once(lambda host: host.count_request("addr", window_s=3600), hosts)
    finally:
        _close(*hosts)
    assert sorted(passed) == [False] * 5 + [True]  # no lock for all: the pair's own row decides
    assert sorted(counts) == [1, 2, 3, 4, 5, 6]  # one user's requests at once, none lost


def test_hosts_share_the_salt_memos_and_sessions(pg_url):
    one, two = _hosts(pg_url, 2)
    try:
        assert one.hash("user") == two.hash("user") != one.hash("other")  # the salt is created once
        one.remember("wechat:late:1", "答复")
        assert two.recall("wechat:late:1") == "答复"
        SharedSessionMemory(one).update(("wechat", "openid-1"), topic="今年幼儿园有啥目标？", shown=(("plan", "12"),))
        session = SharedSessionMemory(two).get(("wechat", "openid-1"))
        assert session.topic == "今年幼儿园有啥目标？" and session.shown == (("plan", "12"),)
        assert two.count_request("addr", window_s=60) == 1 and one.count_request("addr", window_s=60) == 2
    finally:
        _close(one, two)


def test_raw_user_ids_are_not_stored(storage):
    SharedSessionMemory(storage).update(("wechat", "oRAWopenid123"), topic="班额")
    storage.log_question(LogEntry("wechat", storage.hash("oRAWopenid123"), "q", "answer", False, None, None, 1, 1))
    with psycopg.connect(storage.url) as conn:
        dump = conn.execute("SELECT string_agg(t::text, '') FROM (SELECT * FROM sessions) t").fetchone()[0]
        dump += conn.execute("SELECT string_agg(user_hash, '') FROM questions").fetchone()[0]
    assert dump and "oRAWopenid123" not in dump


def test_a_dropped_connection_is_replaced(storage, pg_url):
    storage.log_question(LogEntry("web", "h", "q", "answer", False, None, None, 1, 1))
    pid = storage.connection().raw.info.backend_pid
    with psycopg.connect(pg_url, autocommit=True) as admin:  # as a server restart would
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        storage.questions()
    assert len(storage.questions()) == 1  # the next use reconnects


# -- the schema ----------------------------------------------------------------------------------


def test_a_host_refuses_a_database_not_yet_upgraded(pg_empty_url):
    with pytest.raises(SchemaNotUpgraded, match=r"run `policybot db upgrade`"):
        PgStorage(pg_empty_url).connection()
    applied = upgrade(pg_empty_url)
    assert {name for name, old, new in applied} == {s.name for s in registered()}
    assert all(old == 0 for _, old, _ in applied)
    assert upgrade(pg_empty_url) == []  # nothing left to apply
    host = PgStorage(pg_empty_url)
    assert host.jobs.recent() == []
    host.close()


def test_a_host_refuses_a_newer_schema(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_versions SET version = version + 1 WHERE name = 'log'")
    with pytest.raises(SchemaTooNew, match="log version"):
        PgStorage(pg_url).connection()
    with pytest.raises(SchemaTooNew):
        upgrade(pg_url)


def test_a_new_module_and_a_later_migration_are_applied_once(pg_url, monkeypatch):
    monkeypatch.setattr(schema, "REGISTRY", dict(REGISTRY))  # the test's module is gone afterwards
    register_schema("faq", "CREATE TABLE faq (id INTEGER PRIMARY KEY, question TEXT NOT NULL, at REAL)")
    assert upgrade(pg_url) == [("faq", 0, 1)]
    first = PgStorage(pg_url)
    first.connection().execute("INSERT INTO faq (question, at) VALUES (?, ?)", ("几岁入学", 1796219136.7428489))
    first.close()
    register_schema("faq", "CREATE TABLE faq (id INTEGER PRIMARY KEY, question TEXT NOT NULL, at REAL)",
                    "ALTER TABLE faq ADD COLUMN answer TEXT; -- version 2\nUPDATE faq SET answer = '6岁'")
    with pytest.raises(SchemaNotUpgraded, match="faq 1→2"):
        PgStorage(pg_url).connection()
    assert upgrade(pg_url) == [("faq", 1, 2)]
    second = PgStorage(pg_url)
    try:
        rows = second.connection().execute("SELECT id, question, answer, at FROM faq").fetchall()
        assert rows == [(1, "几岁入学", "6岁", 1796219136.7428489)]  # a unix time keeps its microseconds
    finally:
        second.close()


def test_two_upgrades_at_once_apply_each_migration_once(pg_empty_url):
    results = _at_once(upgrade, [pg_empty_url] * 3)
    assert sorted(len(r) for r in results) == [0, 0, len(registered())]


# -- the dialect ---------------------------------------------------------------------------------


def _no_key(table: str) -> tuple[str, ...]:
    raise AssertionError(f"no key lookup expected for {table}")


def test_dialect_rewrites_only_what_differs():
    assert translate("SELECT data FROM sessions WHERE user = ? AND at >= ?", params=True, primary_key=_no_key) == \
        'SELECT data FROM sessions WHERE "user" = %s AND at >= %s'
    assert translate("SELECT '?', x FROM t WHERE a LIKE '50%' AND b = ?", params=True, primary_key=_no_key) == \
        "SELECT '?', x FROM t WHERE a LIKE '50%' AND b = %s"
    assert translate("SELECT 100 % ?", params=True, primary_key=_no_key) == "SELECT 100 %% %s"
    assert translate("INSERT OR IGNORE INTO meta (name, value) VALUES ('log_salt', ?)", params=True,
                     primary_key=_no_key) == \
        "INSERT INTO meta (name, value) VALUES ('log_salt', %s) ON CONFLICT DO NOTHING"
    assert translate("INSERT OR REPLACE INTO sessions (user, data, at) VALUES (?, ?, ?)", params=True,
                     primary_key=lambda table: ("user",)) == (
        'INSERT INTO sessions ("user", data, at) VALUES (%s, %s, %s)'
        ' ON CONFLICT ("user") DO UPDATE SET data = excluded.data, at = excluded.at')
    assert translate("SELECT date(asked_at, 'unixepoch', 'localtime') FROM questions", params=False,
                     primary_key=_no_key) == "SELECT to_char(to_timestamp(asked_at), 'YYYY-MM-DD') FROM questions"
    with pytest.raises(DialectError):
        translate("PRAGMA journal_mode", params=False, primary_key=_no_key)


def test_dialect_schema_types():
    assert translate_schema("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, at REAL, b BLOB, "
                            "note TEXT DEFAULT 'INTEGER') WITHOUT ROWID") == (
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT, at DOUBLE PRECISION,"
        " b BYTEA, note TEXT DEFAULT 'INTEGER')")


def _curation_script(store: Storage) -> list:
    """Every call of the curated tables' API once (FAQ, served answers and ratings, confirmed)."""
    from bot.storage.curation import Curation, Served

    cur = Curation(store)
    out: list = []
    first, second = cur.add_faq("教育局电话", "见官网"), cur.add_faq("学费多少", "见收费公示")
    out += [(first.id, second.id), [(f.id, f.question) for f in cur.faqs()], cur.faq_version()]
    out += [cur.remove_faq(first.id), cur.remove_faq(first.id), cur.faq_version()]
    for n, helpful in enumerate([False, False, True, None]):
        cur.record_answer(Served(f"a{n}", "web", f"user{n % 2}", "几岁入学", "answer", "law", "11", "第十一条", "YW11"))
        if helpful is not None:
            out.append(cur.rate(f"a{n}", helpful))
    out += [cur.rate("missing", True), cur.last_answer("web", "user1", within_s=60)]
    out += [[(u["answer_id"], u["doc_id"]) for u in cur.unhelpful()], cur.worst_items(), cur.popular()]
    confirmed = cur.confirm("几岁入学", "law", "11", "test")
    out += [confirmed.id, [(c.question, c.item) for c in cur.confirmed()], cur.remove_confirmed(confirmed.id)]
    return out


def test_the_curated_tables_answer_as_on_sqlite(storage, tmp_path):
    sqlite = Storage(tmp_path / FILENAME, salt="test-salt")
    try:
        assert _curation_script(storage) == _curation_script(sqlite)
    finally:
        sqlite.close()
