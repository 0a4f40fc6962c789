"""The admin API over a real library and index: the token, uploads good and bad,
deletion, background re-index jobs (to a newly served version), rollback, statistics,
and the one error shape ``{ok, error, status}``."""

from __future__ import annotations

import io
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader, PdfWriter
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest
from werkzeug.test import TestResponse, encode_multipart

from bot import admin, admin_stats
from bot.config import Settings
from bot.errors import ConfigError
from bot.storage import FILENAME, LogEntry, Storage
from index.build import build_index
from index.library import add_paths, build_library_index, library_root, list_documents
from index.store import build_lock, current_version, list_versions
from tests.conftest import LAW, LAW_QUESTION, LAW_TITLE, SEED, SEED_DOCX, SEED_PDF

TOKEN = "test-admin-token-0123456789abcdef"
CHINESE = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_SENTENCE = re.compile(r"\b(the|is|not|a|no|must|please|try)\s+[a-z]+", re.IGNORECASE)
JOB_TIMEOUT_S = 90.0


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def warm_cache(tmp_path_factory, embedding_cache) -> Path:
    """The session's embedding cache with every document these tests upload, so jobs embed nothing."""
    return warm_embeddings(embedding_cache, tmp_path_factory.mktemp("warm-cache"), (SEED, LAW, SEED_DOCX))


def warm_embeddings(cache: Path, scratch: Path, paths: tuple[Path, ...]) -> Path:
    """Embed ``paths`` into ``cache`` (one throwaway index each, as their doc ids may clash)."""
    for path in paths:
        build_index([path], scratch / f"{path.stem}-{path.suffix.lstrip('.')}", cache_dir=cache)
    return cache


@pytest.fixture(scope="session")
def seed_library(tmp_path_factory, warm_cache) -> Path:
    """A data dir whose library holds the seed plan, indexed and served (copied by each test)."""
    return prepare_library(tmp_path_factory.mktemp("admin-seed") / "data", warm_cache)


def prepare_library(data: Path, cache: Path) -> Path:
    """Fill ``data`` with the seed plan in its library, indexed, and a copy of ``cache`` at its default place."""
    data.mkdir(parents=True)
    add_paths(data, [SEED])
    build_library_index(data, cache_dir=cache)
    shutil.copytree(cache, data / "cache")  # jobs started through the API use the default cache
    return data


@pytest.fixture
def library(tmp_path, seed_library) -> Path:
    return Path(shutil.copytree(seed_library, tmp_path / "data"))


def admin_app(make_app, data: Path, **settings: Any) -> Flask:
    """The app with the admin blueprint, registered here until create_app mounts it itself."""
    app = make_app({"DATA": data, "ADMIN_TOKEN": TOKEN, **settings})
    if "admin" not in app.blueprints:
        app.register_blueprint(admin.bp)
    return app


@pytest.fixture
def app(make_app, library) -> Flask:
    return admin_app(make_app, library)


class Admin:
    """The test client with the admin's bearer token, plus the repeated admin actions."""

    def __init__(self, client: FlaskClient, token: str = TOKEN) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> TestResponse:
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.post(path, headers=self.headers, **kwargs)

    def delete(self, path: str) -> TestResponse:
        return self.client.delete(path, headers=self.headers)

    def upload(self, name: str, content: bytes, *, path: str = "/admin/documents", **fields: str) -> TestResponse:
        # Encoded in memory: the test client's own spooling leaves a temp file open when the
        # app refuses a big body unread (413), which pytest reports as an unraisable warning.
        boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(content), filename=name), **fields})
        return self.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")

    def documents(self) -> dict:
        response = self.get("/admin/documents")
        assert response.status_code == 200, response.json
        return response.json

    def wait(self, job_id: str, timeout: float = JOB_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/admin/jobs/{job_id}").json
            if job["state"] in ("done", "failed"):
                return job
            time.sleep(0.1)
        pytest.fail(f"job {job_id} not finished within {timeout} s: {job}")


@pytest.fixture
def client(app) -> Admin:
    return Admin(app.test_client())


def assert_error(response: TestResponse, status: int, fragment: str = "") -> dict:
    """The admin API's one error shape, its message in Chinese (the page shows it as it is)."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["ok"] is False and body["status"] == status and isinstance(body["error"], str), body
    assert fragment in body["error"], body
    assert CHINESE.search(body["error"]) and not ENGLISH_SENTENCE.search(body["error"]), body
    return body


def _library_files(data: Path) -> list[str]:
    root = library_root(data)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.relative_to(root).parts[0] != ".archive")


# -- settings and the token -------------------------------------------------------------------


def test_configured_only_with_a_token():
    assert not admin.configured(Settings.from_mapping({"ADMIN_TOKEN": None}))
    assert not admin.configured(Settings.from_mapping({}))
    assert admin.configured(Settings.from_mapping({"ADMIN_TOKEN": TOKEN}))
    admin.validate(Settings.from_mapping({"ADMIN_TOKEN": TOKEN}))
    admin.validate(Settings.from_mapping({"ADMIN_TOKEN": None}))  # unset: the admin API is simply off


@pytest.mark.parametrize("token", ["short", "a token with spaces in it"])
def test_weak_token_is_refused_naming_the_variable(token):
    with pytest.raises(ConfigError, match="POLICYBOT_ADMIN_TOKEN"):
        admin.validate(Settings.from_mapping({"ADMIN_TOKEN": token}))


ENDPOINTS = [
    ("GET", "/admin/documents"), ("POST", "/admin/documents"), ("DELETE", "/admin/documents/hengyang-2020-work-plan"),
    ("POST", "/admin/reindex"), ("GET", "/admin/jobs"), ("GET", "/admin/jobs/abc"), ("GET", "/admin/versions"),
    ("POST", "/admin/rollback"), ("GET", "/admin/stats"), ("POST", "/admin/documents/preview"), ("POST", "/admin/ask"),
]
BAD_AUTH = [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", "Bearer 令牌"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("authorization", BAD_AUTH)
def test_api_needs_the_token(app, library, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    before = current_version(library)
    response = app.test_client().open(path, method=method, headers=headers)
    assert_error(response, 401, "管理令牌")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert current_version(library) == before and len(list_documents(library)) == 1


def test_page_is_served_without_token_and_holds_no_data(app):
    response = app.test_client().get("/admin")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "管理令牌" in html and "衡阳" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    script = app.test_client().get("/admin/static/admin.js")
    assert script.status_code == 200 and "textContent" in script.get_data(as_text=True)
    script.close()


def test_unknown_job_and_document_are_404s(client):
    assert_error(client.get("/admin/jobs/nope"), 404, "没有编号为 nope 的任务")
    assert_error(client.delete("/admin/documents/nope"), 404, "没有 ID 为 nope 的文件")
    assert_error(client.delete("/admin/documents/.archive"), 404, "没有 ID 为 .archive 的文件")


def test_unexpected_failure_is_a_500_in_the_same_shape(client, library, caplog):
    (library_root(library) / "hengyang-2020-work-plan" / "record.json").write_text("{broken", encoding="utf-8")
    body = assert_error(client.get("/admin/documents"), 500, "服务器内部错误")
    assert "JSONDecodeError" not in body["error"] + body["detail"]  # details go to the log only
    assert "GET /admin/documents failed" in caplog.text


# -- uploads ----------------------------------------------------------------------------------


def test_upload_docx_then_list(client):
    response = client.upload(SEED_DOCX.name, SEED_DOCX.read_bytes())
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["id"], body["title"], body["items"]) == ("hengyang-2020-work-plan", "衡阳市教育局2020年工作要点", 27)
    assert body["replaced"] is True  # same name as the seed's .txt: the new upload replaces it
    listed = client.documents()
    assert [(d["id"], d["format"]) for d in listed["documents"]] == [("hengyang-2020-work-plan", "docx")]


def test_upload_with_chinese_name_is_new_and_needs_reindex(client, library):
    response = client.upload("义务教育法（2018修正）.md", LAW.read_bytes())
    assert response.status_code == 201, response.json
    assert response.json["id"] == "义务教育法-2018修正" and response.json["title"] == LAW_TITLE
    listed = client.documents()
    status = {d["id"]: d["status"] for d in listed["documents"]}
    assert status == {"义务教育法-2018修正": "new", "hengyang-2020-work-plan": "served"}
    assert listed["reindex_needed"] is True and listed["version"] == current_version(library)
    law = next(d for d in listed["documents"] if d["id"] == "义务教育法-2018修正")
    assert law["filename"] == "义务教育法（2018修正）.md" and law["items"] == response.json["items"]
    assert client.delete(f"/admin/documents/{quote(law['id'])}").status_code == 200
    assert [d["id"] for d in client.documents()["documents"]] == ["hengyang-2020-work-plan"]


def _encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(SEED_PDF))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


BAD_UPLOADS = [
    ("empty.txt", lambda: b"", 400, "文件 empty.txt 是空的"),
    ("blank.md", lambda: b" \n\n  \n", 400, "文件 blank.md 是空的"),
    ("plan.xls", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, 400, "不支持 plan.xls 的格式"),
    ("README", lambda: b"text", 400, "不支持 README 的格式"),
    ("old.doc", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, 400, "不支持 old.doc 的格式"),
    ("legacy.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, 400, "legacy.docx 是旧版 Word"),
    ("text.pdf", lambda: "一、这其实是文本".encode(), 400, "text.pdf 不是有效的 PDF 文件"),
    ("text.docx", lambda: "一、这其实是文本".encode(), 400, "text.docx 不是有效的 Word（.docx）文件"),
    ("pdf.txt", lambda: SEED_PDF.read_bytes(), 400, "无法识别 pdf.txt 的文字编码"),
    ("locked.pdf", _encrypted_pdf, 400, "locked.pdf 设有密码保护"),
    ("notes.txt", lambda: "今天开会，大家发言踊跃。".encode(), 400, "在 notes.txt 中没有找到章节或编号条目"),
    ("huge.txt", lambda: b"a" * (admin.MAX_UPLOAD_BYTES + 1), 413, "文件太大"),
    ("...", lambda: SEED.read_bytes(), 400, "没有可用的字符"),
    ("副本.txt", lambda: SEED.read_bytes(), 409, "与文件库中的《衡阳市教育局2020年工作要点》"),
    ("hengyang-2020-work-plan.txt", lambda: SEED.read_bytes(), 409, "没有需要更新的"),
]


@pytest.mark.parametrize(("name", "content", "status", "message"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
def test_bad_upload_says_why_and_changes_nothing(client, library, name, content, status, message):
    before, files = client.documents(), _library_files(library)
    body = assert_error(client.upload(name, content()), status, message)
    assert "policybot-upload-" not in body["error"]  # the temporary path is not the admin's business
    assert client.documents() == before and _library_files(library) == files


def test_upload_without_file_field(client):
    assert_error(client.post("/admin/documents", data={"other": "x"}), 400, "请选择要上传的文件")


def test_path_traversal_name_is_saved_inside_the_library(client, library):
    response = client.upload("../../x.txt", LAW.read_bytes())
    assert response.status_code == 201, response.json
    assert (response.json["id"], response.json["filename"]) == ("x", "x.txt")
    assert (library_root(library) / "x" / "original.txt").is_file()
    assert not (library.parent / "x.txt").exists() and not (library / "x.txt").exists()


@pytest.mark.parametrize(("given", "safe"), [
    ("../../x.txt", "x.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    ("/etc/passwd", "passwd"),
    (".hidden.txt", "hidden.txt"),
    ("衡阳市 2020年 工作要点.docx", "衡阳市 2020年 工作要点.docx"),
    ("a\x00b\nc.txt", "abc.txt"),
    ('what?<is>"this"|.pdf', "whatisthis.pdf"),
    ("x" * 300 + ".pdf", "x" * (admin.MAX_NAME_CHARS - 4) + ".pdf"),
])
def test_safe_filename(given, safe):
    assert admin.safe_filename(given) == safe


@pytest.mark.parametrize("given", ["", "..", "../", "\x01\x02"])
def test_safe_filename_refuses_nothing_left(given):
    with pytest.raises(BadRequest):
        admin.safe_filename(given)


def test_delete_then_delete_again(client, library):
    response = client.delete("/admin/documents/hengyang-2020-work-plan")
    assert response.status_code == 200 and response.json["removed"] is True
    listed = client.documents()
    assert listed["documents"] == [] and listed["reindex_needed"] is True
    assert [d["id"] for d in listed["removed"]] == ["hengyang-2020-work-plan"]  # still served until a re-index
    assert_error(client.delete("/admin/documents/hengyang-2020-work-plan"), 404, "没有 ID 为")
    assert_error(client.post("/admin/reindex"), 400, "文件库是空的")


# -- jobs -------------------------------------------------------------------------------------


def test_reindex_job_publishes_a_version_that_is_served(client, library):
    served_before = current_version(library)
    assert client.upload("yiwujiaoyufa-2018.md", LAW.read_bytes()).status_code == 201
    response = client.post("/admin/reindex")
    assert response.status_code == 202, response.json
    job_id = response.json["job"]
    assert response.headers["Location"].endswith(f"/admin/jobs/{job_id}")
    job = client.wait(job_id)
    assert job["state"] == "done", job
    assert job["progress"] == 1.0 and job["error"] is None
    assert job["version"] == current_version(library) != served_before
    assert [j["job"] for j in client.get("/admin/jobs").json["jobs"]] == [job_id]
    listed = client.documents()
    assert listed["reindex_needed"] is False and {d["status"] for d in listed["documents"]} == {"served"}
    versions = client.get("/admin/versions").json
    assert versions["current"] == job["version"] and [v["version"] for v in versions["versions"]][1] == served_before
    _wait_for_citation(client.client, LAW_TITLE)


def _wait_for_citation(client: FlaskClient, title: str, timeout: float = 20.0) -> None:
    """The hot swap of bot/service.py loads the new version in the background: poll for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.post("/api/ask", json={"question": LAW_QUESTION}).get_json()
        if any(hit["document"] == title for hit in answer["hits"]):
            return
        time.sleep(0.2)
    pytest.fail(f"the new index version was not served within {timeout} s")


def test_reindex_while_another_build_holds_the_lock_is_409(client, library):
    with build_lock(library):
        assert_error(client.post("/admin/reindex"), 409, "另一个索引重建正在进行")
    assert client.get("/admin/jobs").json["jobs"] == []  # refused before any job was queued


def test_reindex_while_a_job_is_active_is_409_naming_it(client, library):
    running = Storage(library / FILENAME).jobs.create()  # queued by another worker
    body = assert_error(client.post("/admin/reindex"), 409, f"重建任务 {running.id} 尚未完成")
    assert body["job"] == running.id


def test_job_of_a_dead_worker_is_failed_when_read(client, library):
    store = Storage(library / FILENAME).jobs  # another worker's connection
    dead = store.create()
    store.update(dead.id, state="running", stage="embed", done=3, total=10)
    with sqlite3.connect(library / FILENAME) as conn:  # its last heartbeat, long ago
        conn.execute("UPDATE jobs SET heartbeat = heartbeat - 3600 WHERE id = ?", (dead.id,))
    conn.close()
    job = client.get(f"/admin/jobs/{dead.id}").json
    assert job["state"] == "failed" and "服务进程已停止" in job["error"] and "worker" in job["detail"]
    assert job["stage_end"] == 0.9  # the end of the embed stage: how far the page's bar may glide
    response = client.post("/admin/reindex")  # the dead job no longer blocks a new one
    assert response.status_code == 202, response.json
    assert client.wait(response.json["job"])["state"] == "done"


# -- rollback ---------------------------------------------------------------------------------


def test_rollback(client, library, warm_cache):
    first = current_version(library)
    add_paths(library, [LAW])
    second = build_library_index(library, cache_dir=warm_cache)
    assert client.post("/admin/rollback").json == {"version": first, "previous": second}
    assert current_version(library) == first
    response = client.post("/admin/rollback", json={"version": second})
    assert response.json == {"version": second, "previous": first}
    assert_error(client.post("/admin/rollback", json={"version": "20990101"}), 404, "没有这个索引版本（20990101）")
    assert_error(client.post("/admin/rollback", json={"version": 3}), 400, "应是字符串")
    assert_error(client.post("/admin/rollback", json=[second]), 400, "格式不对")
    assert current_version(library) == second and list_versions(library) == [first, second]


def test_rollback_without_an_older_version(client):
    assert_error(client.post("/admin/rollback"), 404, "没有更早的索引版本")


# -- statistics -------------------------------------------------------------------------------


def test_stats_after_questions(client):
    for question in ("乡村教师有没有补贴？", "明天天气怎么样", "明天天气怎么样", "帮助"):
        assert client.client.post("/api/ask", json={"question": question}).status_code == 200
    stats = client.get("/admin/stats").json
    assert len(stats["days"]) == 30 and stats["days"][-1]["questions"] == 4
    assert stats["days"][-1]["unanswered"] == 2 and stats["days"][0]["date"] == stats["since"]
    assert (stats["questions"], stats["searches"], stats["answered"]) == (4, 3, 1)
    assert stats["answer_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert [(u["question"], u["count"]) for u in stats["unanswered"]] == [("明天天气怎么样", 2)]
    top = stats["top_items"]
    assert len(top) == 1 and top[0]["count"] == 1 and top[0]["title"] == "衡阳市教育局2020年工作要点"
    assert top[0]["item_title"] and top[0]["item"]


def test_stats_count_only_the_last_30_days(tmp_path):
    storage = Storage(tmp_path / "log.sqlite3")
    now = time.time()
    for days_ago, abstained in ((0, False), (1, True), (28, False), (45, True)):
        storage.log_question(LogEntry("web", "u", f"问题{days_ago}", "abstain" if abstained else "answer",
                                      abstained, None if abstained else "doc", None if abstained else "3",
                                      0.5, 1.0, asked_at=now - days_ago * 86400))
    try:
        stats = admin_stats.question_stats(storage)
    finally:
        storage.close()
    assert stats["questions"] == sum(d["questions"] for d in stats["days"]) == 3
    assert (stats["searches"], stats["answered"]) == (3, 2)
    assert [u["question"] for u in stats["unanswered"]] == ["问题1"]
    assert stats["top_items"][0] == {"document": "doc", "title": None, "item": "3", "item_number": None,
                                     "item_title": None, "count": stats["answered"]}


def test_stats_with_an_empty_log(client):
    stats = client.get("/admin/stats").json
    assert stats["questions"] == 0 and stats["answer_rate"] is None
    assert stats["unanswered"] == [] and stats["top_items"] == []
