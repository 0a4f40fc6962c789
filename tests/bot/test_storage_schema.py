"""bot/storage/schema.py: every table module's schema registered in one line, versioned
migrations applied once to new and existing databases, a newer database refused."""

from __future__ import annotations

import sqlite3

import pytest

from bot.storage import FILENAME, LogEntry, SchemaTooNew, Storage, schema
from bot.storage.schema import REGISTRY, register_schema, registered, statements

#: The question log's tables as the last release before the registry created them (user_version 1).
OLD_SCHEMA = """
CREATE TABLE questions (id INTEGER PRIMARY KEY, asked_at REAL NOT NULL, channel TEXT NOT NULL,
    user_hash TEXT NOT NULL, question TEXT NOT NULL, kind TEXT NOT NULL, abstained INTEGER NOT NULL,
    top_doc TEXT, top_item TEXT, confidence REAL NOT NULL, latency_ms REAL NOT NULL);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('log_salt', 'old-salt');
INSERT INTO questions VALUES (1, 1700000000, 'web', 'h', '旧问题', 'answer', 0, NULL, NULL, 0.9, 1.0);
PRAGMA user_version = 1;
"""


def _versions(path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, version FROM schema_versions").fetchall())


def test_every_table_module_is_registered_and_applied(tmp_path):
    names = {s.name for s in registered()}
    assert {"meta", "log", "dedup", "sessions", "jobs", "tokens"} <= names
    storage = Storage(tmp_path / FILENAME)
    storage.connection()
    storage.close()
    assert _versions(tmp_path / FILENAME) == {s.name: s.version for s in registered()}


def test_a_database_from_before_the_registry_keeps_its_rows(tmp_path):
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    storage = Storage(tmp_path / FILENAME)
    try:
        assert [e.question for e in storage.questions()] == ["旧问题"]
        assert storage.hash("u") == Storage(tmp_path / FILENAME, salt="old-salt").hash("u")
        storage.log_question(LogEntry("web", "h", "新问题", "answer", False, None, None, 0.9, 1.0))
        assert storage.jobs.recent() == [] and storage.claim("k", stale_after_s=30).state == "claimed"
    finally:
        storage.close()


def test_a_newer_database_is_refused(tmp_path):
    Storage(tmp_path / FILENAME).connection()  # created, then "upgraded by a newer policybot"
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        conn.execute("UPDATE schema_versions SET version = version + 1 WHERE name = 'log'")
    conn.close()
    with pytest.raises(SchemaTooNew, match="log version"):
        Storage(tmp_path / FILENAME).connection()


def test_a_new_module_and_a_later_migration_are_applied_once(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "REGISTRY", dict(REGISTRY))  # the test's module is gone afterwards
    register_schema("faq", "CREATE TABLE faq (id INTEGER PRIMARY KEY, question TEXT NOT NULL)")
    first = Storage(tmp_path / FILENAME)
    first.connection().execute("INSERT INTO faq (question) VALUES ('几岁入学')")
    first.close()
    register_schema("faq", "CREATE TABLE faq (id INTEGER PRIMARY KEY, question TEXT NOT NULL)",
                    "ALTER TABLE faq ADD COLUMN answer TEXT; -- version 2\nUPDATE faq SET answer = '6岁'")
    second = Storage(tmp_path / FILENAME)
    try:
        assert second.connection().execute("SELECT question, answer FROM faq").fetchall() == [("几岁入学", "6岁")]
        assert _versions(tmp_path / FILENAME)["faq"] == 2
    finally:
        second.close()
    Storage(tmp_path / FILENAME).connection()  # nothing left to apply: the ALTER is not run twice


def test_statements_ignore_semicolons_in_comments():
    assert statements("CREATE TABLE a (x TEXT); -- a; b\nCREATE TABLE b (y TEXT) -- c;\n") == [
        "CREATE TABLE a (x TEXT)", "CREATE TABLE b (y TEXT)"]
