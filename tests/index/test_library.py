"""The document library: add, replace, remove, incremental builds, versions, several documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import CorpusError, IndexNotFound
from index.library import (
    DocumentNotFound,
    add_document,
    add_paths,
    build_library_index,
    library_root,
    list_documents,
    remove_document,
)
from index.search import open_searcher
from index.store import current_version, list_versions, rollback
from tests.conftest import LAW, LAW_QUESTION, LAW_TITLE, SEED, SEED_DOCX


@pytest.fixture
def next_year_plan(tmp_path) -> Path:
    """Next year's plan as an admin would upload it: the seed with its year moved on."""
    path = tmp_path / "upload" / "hengyang-2021-work-plan.txt"
    path.parent.mkdir()
    path.write_text(SEED.read_text(encoding="utf-8").replace("2020年", "2021年"), encoding="utf-8")
    return path


def _build(data: Path, cache: Path, **kw) -> str:
    return build_library_index(data, cache_dir=cache, **kw)


def test_add_list_remove(tmp_path):
    record = add_document(tmp_path, SEED)
    assert (record.doc_id, record.title, record.year, record.items) == (
        "hengyang-2020-work-plan", "衡阳市教育局2020年工作要点", 2020, 27)
    assert [r.doc_id for r in list_documents(tmp_path)] == [record.doc_id]
    remove_document(tmp_path, record.doc_id)
    assert list_documents(tmp_path) == []
    # nothing uploaded is lost: the removed original is archived
    assert list((library_root(tmp_path) / ".archive").glob("*/original.txt"))


def test_a_document_still_being_written_aside_is_not_listed(tmp_path):
    record = add_document(tmp_path, SEED)
    staging = library_root(tmp_path) / ".staging-other-1"  # another host's install, half written
    staging.mkdir()
    (staging / "record.json").write_text("", encoding="utf-8")
    assert [r.doc_id for r in list_documents(tmp_path)] == [record.doc_id]


def test_upload_under_a_temporary_name_uses_the_uploaded_name(tmp_path):
    temp = tmp_path / "werkzeug-tmp-123"
    temp.write_bytes(SEED_DOCX.read_bytes())
    record = add_document(tmp_path / "data", temp, filename="../../etc/衡阳 2020 plan.docx")
    assert record.format == "docx" and record.items == 27
    assert (library_root(tmp_path / "data") / record.doc_id / "original.docx").is_file()
    assert ".." not in record.doc_id and "/" not in record.doc_id


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("fake.pdf", b"just text, not a pdf", "fake.pdf"),
        ("fake.docx", b"PK not really a zip", "fake.docx"),
        ("table.xlsx", b"PK\x03\x04", "unsupported format"),
        ("story.txt", "从前有座山，山里有座庙。".encode(), "no sections or numbered items"),
    ],
)
def test_bad_upload_leaves_the_library_unchanged(tmp_path, name, content, message):
    add_document(tmp_path, SEED)
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        add_document(tmp_path, bad)
    assert [r.doc_id for r in list_documents(tmp_path)] == ["hengyang-2020-work-plan"]


def test_incremental_build_embeds_only_what_changed(tmp_path, embedding_cache, next_year_plan):
    add_paths(tmp_path, [SEED])
    _build(tmp_path, embedding_cache)
    add_paths(tmp_path, [next_year_plan])
    stages: list[tuple[str, int, int]] = []
    _build(tmp_path, embedding_cache, progress=lambda *a: stages.append(a))
    embedded = max(total for stage, _, total in stages if stage == "embed")
    # only sentences and items whose text mentions the year are new
    assert 0 < embedded < 40


def test_this_year_means_the_newest_plan_and_named_years_match(tmp_path, embedding_cache, next_year_plan):
    add_paths(tmp_path, [SEED, next_year_plan, LAW])
    _build(tmp_path, embedding_cache)
    searcher = open_searcher(tmp_path)
    newest = searcher.search("今年幼儿园有啥目标？").hits[0]
    assert newest.doc_title == "衡阳市教育局2021年工作要点" and newest.item_number in (3, 12)
    older = searcher.search("2020年幼儿园有啥目标？").hits[0]
    assert older.doc_title == "衡阳市教育局2020年工作要点"
    law = searcher.search(LAW_QUESTION).hits[0]
    assert law.doc_title == LAW_TITLE
    # the same item number in two documents never mixes: each hit's sentences come from its own document
    for hit in searcher.search("幼儿园", k=5).hits:
        doc = next(d for d in searcher.documents if d.doc_id == hit.doc_id)
        assert all(s in doc.text for s in hit.sentences)


def test_remove_then_rebuild_stops_serving(tmp_path, embedding_cache):
    add_paths(tmp_path, [SEED, LAW])
    _build(tmp_path, embedding_cache)
    remove_document(tmp_path, "yiwujiaoyufa-2018")
    _build(tmp_path, embedding_cache)
    assert {d.doc_id for d in open_searcher(tmp_path).documents} == {"hengyang-2020-work-plan"}
    with pytest.raises(DocumentNotFound):
        remove_document(tmp_path, "yiwujiaoyufa-2018")
    with pytest.raises(DocumentNotFound):
        remove_document(tmp_path, "../index")


def test_versions_are_pruned_and_rollback_serves_the_previous(tmp_path, embedding_cache):
    add_paths(tmp_path, [SEED])
    built = [_build(tmp_path, embedding_cache, keep=2) for _ in range(3)]
    assert list_versions(tmp_path) == built[1:]
    assert rollback(tmp_path) == built[1]
    assert current_version(tmp_path) == built[1]
    assert open_searcher(tmp_path).version == built[1]
    with pytest.raises(IndexNotFound):
        rollback(tmp_path, "no-such-version")


def test_empty_library_build_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="docs add"):
        build_library_index(tmp_path)


def test_a_parse_from_an_older_parser_is_redone(tmp_path):
    import json

    from index.library import load_documents

    record = add_document(tmp_path, SEED)
    parsed = library_root(tmp_path) / record.doc_id / "parsed.json"
    data = json.loads(parsed.read_text(encoding="utf-8"))
    data["document"]["title"] = "stale"
    parsed.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert load_documents(tmp_path)[0].title == "stale"  # same original, same parser: the cache is used
    data["parser"] = 0
    parsed.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert load_documents(tmp_path)[0].title == "衡阳市教育局2020年工作要点"
