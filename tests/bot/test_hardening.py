"""Issue 9, the defects: bad input gets a clear 4xx, never a 500; the replay guard and the
dedupe keys hold across workers and users; a deleted database heals itself.

Everything is real: the Flask app from ``create_app`` over a real index, WeChat pushes
signed and encrypted by wechatpy's own crypto (tests/bot/platforms.py), real files.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from bot.service import get_service
from tests.bot.platforms import AES_KEY, APPID, USER, WeChatServer
from tests.bot.platforms import TOKEN as TOKEN_WECHAT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hardening"
PLAN = FIXTURES / "plan.txt"
TOKEN = "hardening-admin-token-0123456789"
TELEGRAM_SECRET = "hardening-secret-1"
NESTED = b'{"question":"x","y":' + b"[" * 20_000 + b"]" * 20_000 + b"}"


@pytest.fixture
def make(make_app, tmp_path) -> Callable[..., Flask]:
    """``make(settings, data=…)``: the conftest's real app; DATA defaults to a fresh empty dir."""
    return lambda settings=None, *, data=None: make_app({"DATA": data or tmp_path / "data", **(settings or {})})


def no_tracebacks(caplog) -> None:
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage() or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def upload(client, name: str, content: bytes, **fields: str):
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(content), filename=name), **fields})
    return client.post("/admin/documents", data=body, headers={"Authorization": f"Bearer {TOKEN}"},
                       content_type=f"multipart/form-data; boundary={boundary}")


# -- 1. deeply nested JSON ----------------------------------------------------------------------


def test_nested_json_on_api_ask_is_a_400_without_a_traceback(make, bot_data, caplog) -> None:
    client = make(data=bot_data).test_client()
    caplog.set_level(logging.INFO)
    response = client.post("/api/ask", data=NESTED, content_type="application/json")
    assert response.status_code == 400, response.data[:300]
    assert response.json["ok"] is False and "JSON object" in response.json["error"]
    no_tracebacks(caplog)


def test_nested_json_on_telegram_is_a_400_not_an_html_500(make, bot_data, caplog) -> None:
    client = make({"TELEGRAM_SECRET": TELEGRAM_SECRET}, data=bot_data).test_client()
    caplog.set_level(logging.INFO)
    body = b'{"update_id": 1, "message":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    response = client.post("/telegram", data=body, headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                           content_type="application/json")
    assert response.status_code == 400
    no_tracebacks(caplog)


def test_nested_json_on_admin_rollback_is_a_400(make, bot_data) -> None:
    client = make({"ADMIN_TOKEN": TOKEN}, data=bot_data).test_client()
    response = client.post("/admin/rollback", data=NESTED, content_type="application/json",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400, response.json
    assert response.json["ok"] is False


# -- 3. duplicates keyed by (channel, sender, MsgId) ------------------------------------------


def test_another_users_message_reusing_a_msg_id_gets_its_own_answer(make, bot_data) -> None:
    app = make({"WECHAT_TOKEN": WeChatServer().token}, data=bot_data)
    client, wechat = app.test_client(), WeChatServer()

    def ask(user: str, text: str) -> str:
        push = wechat.push(wechat.text(text, msg_id="7000000000000000042", user=user))
        response = client.post("/wechat", query_string=push.query, data=push.body)
        assert response.status_code == 200
        return wechat.open_reply(response.data)["Content"]

    first = ask(USER, "班额有什么规定？")
    retry = ask(USER, "班额有什么规定？")
    other = ask("oAnotherUser000000000000002", "帮助")
    assert retry == first
    assert other != first
    logged = get_service(app).storage.questions()
    assert [e.question for e in logged] == ["班额有什么规定？", "帮助"]


# -- 4. upload names cut by UTF-8 bytes ---------------------------------------------------------


def test_an_upload_named_with_500_chinese_characters_is_kept(make, tmp_path) -> None:
    client = make({"ADMIN_TOKEN": TOKEN}).test_client()
    response = upload(client, "教" * 500 + ".txt", PLAN.read_bytes())
    assert response.status_code == 201, response.json
    name = response.json["filename"]
    assert name.endswith(".txt") and len(name.encode("utf-8")) <= 255
    assert response.json["title"] == "示范县教育局2021年工作要点"
    folders = [p.name for p in (tmp_path / "data" / "documents").iterdir() if not p.name.startswith(".")]
    assert [len(f.encode("utf-8")) <= 255 for f in folders] == [True]


def test_safe_filename_cuts_by_bytes_never_inside_a_character() -> None:
    from bot.admin import MAX_NAME_BYTES, safe_filename

    for stem in ("教" * 500, "a" + "教" * 300, "ab" + "𠀀" * 200):
        name = safe_filename(stem + ".docx")
        assert name.endswith(".docx") and len(name.encode("utf-8")) <= MAX_NAME_BYTES
        assert stem.startswith(name.removesuffix(".docx"))


# -- 2. the replay guard is one atomic claim across workers ---------------------------------------


@pytest.mark.parametrize("mode", ["plain", "aes"])
def test_a_signature_raced_to_two_workers_with_two_bodies_is_accepted_once(make, bot_data, mode) -> None:
    """Two apps on one data dir are two gunicorn workers: each has its own memory, they share SQLite."""
    settings = {"WECHAT_TOKEN": TOKEN_WECHAT, **({"WECHAT_AES_KEY": AES_KEY, "WECHAT_APPID": APPID}
                                                 if mode == "aes" else {})}
    workers = [make(settings, data=bot_data).test_client() for _ in range(2)]
    wechat = WeChatServer()
    both = 0
    for trial in range(24):
        genuine = wechat.push(wechat.event("VIEW", user=USER, EventKey=f"k{trial}"), mode=mode)
        forged = wechat.push(wechat.event("VIEW", user=f"oForged{trial:020d}", EventKey=f"k{trial}"), mode=mode,
                             timestamp=genuine.query["timestamp"], nonce=genuine.query["nonce"])
        if mode == "plain":
            assert forged.query == genuine.query and forged.body != genuine.body
        statuses = race(workers, (genuine, forged))
        assert sorted(statuses) in ([200, 200], [200, 403]), statuses
        both += statuses == [200, 200]
    assert both == 0, f"{both} of 24 races accepted both bodies"


def race(clients, pushes) -> list[int]:
    """POST each push to its client at the same moment, from two threads; the statuses."""
    statuses: list[int] = []
    barrier = threading.Barrier(len(clients))

    def send(client, push) -> None:
        barrier.wait()
        statuses.append(client.post("/wechat", query_string=push.query, data=push.body).status_code)

    threads = [threading.Thread(target=send, args=pair) for pair in zip(clients, pushes, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_retry_of_the_same_body_still_passes_after_a_refused_forgery(make, bot_data) -> None:
    first, second = (make({"WECHAT_TOKEN": TOKEN_WECHAT}, data=bot_data).test_client() for _ in range(2))
    wechat = WeChatServer()
    genuine = wechat.push(wechat.event("VIEW", user=USER, EventKey="x"))
    forged = wechat.push(wechat.event("VIEW", user="oForged", EventKey="x"), timestamp=genuine.query["timestamp"],
                         nonce=genuine.query["nonce"])
    assert first.post("/wechat", query_string=genuine.query, data=genuine.body).status_code == 200
    assert second.post("/wechat", query_string=forged.query, data=forged.body).status_code == 403
    assert second.post("/wechat", query_string=genuine.query, data=genuine.body).status_code == 200


# -- 8. a deleted database is recreated, nothing is lost ------------------------------------------


def test_deleting_the_database_while_serving_loses_no_question(make, bot_data) -> None:
    from bot.storage import FILENAME, Storage

    app = make(data=bot_data)
    client = app.test_client()
    assert client.post("/api/ask", json={"question": "帮助"}).status_code == 200
    (bot_data / FILENAME).unlink()
    statuses: list[int] = []

    def ask(n: int) -> None:
        statuses.append(client.post("/api/ask", json={"question": f"目录 {n}"}).status_code)

    ask(0)  # the thread whose connection points at the deleted file
    threads = [threading.Thread(target=ask, args=(n,)) for n in range(1, 6)]  # threads with new connections
    for thread in threads:
        thread.start()
        thread.join()
    assert statuses == [200] * 6
    fresh = Storage(bot_data / FILENAME)
    try:
        assert sorted(e.question for e in fresh.questions()) == [f"目录 {n}" for n in range(6)]
    finally:
        fresh.close()


# -- 7. a damaged version never takes the bot down ------------------------------------------------


@pytest.fixture
def two_versions(tmp_path, embedding_cache) -> tuple[Path, str, str]:
    """A data dir with two real versions of corpus/ (the second published): (data, older, newer)."""
    from index.build import build_index
    from tests.conftest import CORPUS

    data = tmp_path / "versions"
    older = build_index([CORPUS], data, cache_dir=embedding_cache)
    newer = build_index([CORPUS], data, cache_dir=embedding_cache)
    return data, older, newer


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.slow
def test_policybot_serve_boots_on_a_damaged_version_and_says_degraded(two_versions) -> None:
    import json
    import urllib.request

    from tests.bot.servers import START_TIMEOUT_S, Server

    data, older, newer = two_versions
    truncate(data / "index" / newer / "vectors.npy")
    server = Server(data, workers=2)
    try:
        url = server.url(START_TIMEOUT_S)
        with urllib.request.urlopen(f"{url}/healthz", timeout=30) as response:
            status, text = response.status, response.read().decode()
        health = json.loads(text)
        assert status == 200 and health["status"] == "degraded" and health["index"] == older
        assert health["damaged"] == [{"version": newer, "problem": "vectors.npy does not match its checksum "
                                                                  "(truncated, edited or swapped)"}]
        assert str(data) not in text
        request = urllib.request.Request(f"{url}/api/ask", data=json.dumps({"question": "班额有什么规定？"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and json.loads(response.read())["hits"]
    finally:
        server.stop()
    damaged_lines = [line for line in server.log if "is damaged" in line]
    assert damaged_lines and all(newer in line and older in line for line in damaged_lines)
    assert not any("Traceback" in line for line in server.log), "".join(server.log)


def test_an_idle_worker_switches_to_a_rolled_back_version_within_a_second(make, two_versions) -> None:
    from index.store import rollback

    data, older, newer = two_versions
    service = get_service(make(data=data))
    assert service.searchers().version == newer
    rollback(data, older)
    # No request in between: the worker must notice by itself (it looks every 0.5 s; the bound is generous
    # because a busy machine loads slowly, and without the watcher it would never switch).
    assert wait_until(lambda: service.searchers.version == older), service.searchers.version


def test_rolling_back_to_a_damaged_version_keeps_serving_and_says_degraded(make, two_versions) -> None:
    from index.store import rollback

    data, older, newer = two_versions
    client = make(data=data).test_client()
    assert client.get("/healthz").json["status"] == "ok"
    (data / "index" / older / "dense.faiss").write_bytes(b"garbage")
    rollback(data, older)
    assert wait_until(lambda: client.get("/healthz").json["status"] == "degraded")
    health = client.get("/healthz").json
    assert health["index"] == newer and health["status"] == "degraded"
    assert health["damaged"][0]["version"] == older and "dense.faiss" in health["damaged"][0]["problem"]
    assert client.post("/api/ask", json={"question": "班额有什么规定？"}).status_code == 200


# -- 6. a zip-bomb upload costs a moment and no memory ---------------------------------------------


def rss_mib() -> float:
    import resource

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def test_a_zip_bomb_upload_is_refused_unread_without_growing_the_worker(make, tmp_path) -> None:
    from tests.index.test_loader_limits import docx_bomb

    client = make({"ADMIN_TOKEN": TOKEN}).test_client()
    bomb = docx_bomb(tmp_path / "bomb.docx", 256).read_bytes()
    before = rss_mib()
    response = upload(client, "炸弹.docx", bomb)
    grown = rss_mib() - before
    assert response.status_code == 400, response.json
    assert "炸弹.docx unpacks to" in response.json["detail"] and "zip bomb" in response.json["detail"]
    assert "炸弹.docx 解压后异常庞大" in response.json["error"]  # the admin page's Chinese
    assert str(tmp_path) not in response.json["error"] + response.json["detail"]
    assert grown < 100, f"the worker grew by {grown:.0f} MiB"


# -- issue 7: the admin's title and year ----------------------------------------------------------


def test_an_uploaded_title_and_year_are_kept_and_cited(make, tmp_path, embedding_cache) -> None:
    from index.library import build_library_index
    from index.store import load_index

    client = make({"ADMIN_TOKEN": TOKEN}).test_client()
    response = upload(client, "plan.txt", PLAN.read_bytes(), title="《示范县2021年教育工作要点》", year="2022")
    assert response.status_code == 201, response.json
    assert (response.json["title"], response.json["year"]) == ("示范县2021年教育工作要点", 2022)
    assert response.json["title_set"] and response.json["year_set"] and response.json["encoding"] == "utf-8"
    listed = client.get("/admin/documents", headers={"Authorization": f"Bearer {TOKEN}"}).json["documents"]
    assert [(d["title"], d["year"]) for d in listed] == [("示范县2021年教育工作要点", 2022)]
    data = tmp_path / "data"
    build_library_index(data, cache_dir=embedding_cache)
    stored = load_index(data, embedder_name=stored_embedder(data))
    assert [(d.title, d.year) for d in stored.documents] == [("示范县2021年教育工作要点", 2022)]
    assert {c.doc_title for c in stored.chunks} == {"示范县2021年教育工作要点"}


def stored_embedder(data: Path) -> str:
    from index.store import current_version, version_manifest

    return version_manifest(data, current_version(data))["embedder"]["name"]


@pytest.mark.parametrize(("fields", "fragment"), [({"year": "二〇二一"}, "年份应是 1900 到 2100"),
                                                  ({"year": "1850"}, "年份应是 1900 到 2100"),
                                                  ({"title": "题" * 201}, "标题最多 200 个字")])
def test_a_bad_title_or_year_is_a_400(make, fields, fragment) -> None:
    client = make({"ADMIN_TOKEN": TOKEN}).test_client()
    response = upload(client, "plan.txt", PLAN.read_bytes(), **fields)
    assert response.status_code == 400 and fragment in response.json["error"], response.json


def test_docs_add_with_title_and_year_and_docs_list_shows_them(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    monkeypatch.setenv("POLICYBOT_DATA", str(tmp_path / "data"))
    runner = CliRunner()
    added = runner.invoke(cli, ["docs", "add", str(PLAN), "--title", "示范县工作要点", "--year", "2022"])
    assert added.exit_code == 0, added.output
    assert "《示范县工作要点》 2022" in added.output
    big5 = runner.invoke(cli, ["docs", "add", str(FIXTURES / "plan-big5.txt")])
    assert big5.exit_code == 0, big5.output
    listed = runner.invoke(cli, ["docs", "list"]).output
    assert "《示范县工作要点》*\t2022*\ttxt (utf-8)" in listed
    assert "《示範縣教育局2021年工作要點》\t2021\ttxt (big5)" in listed
    both = runner.invoke(cli, ["docs", "add", str(PLAN), str(FIXTURES / "plan-big5.txt"), "--title", "x"])
    assert both.exit_code == 1 and "applies to one file" in both.output


# -- risk: upload folders of killed workers ---------------------------------------------------------


def test_upload_folders_of_killed_workers_are_swept_at_start(make, tmp_path) -> None:
    leftover = tmp_path / "data" / "uploads" / "999999999-deadbeef0000"
    leftover.mkdir(parents=True)
    (leftover / "half.docx").write_bytes(b"PK")
    client = make({"ADMIN_TOKEN": TOKEN}).test_client()
    assert not leftover.exists()
    assert upload(client, "plan.txt", PLAN.read_bytes()).status_code == 201
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


# -- risk: a read-only data directory ---------------------------------------------------------------

READ_ONLY_PROBE = r"""
import io, json, sys
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart
from bot.app import create_app

data, plan, token = sys.argv[1:4]
app = create_app({"TESTING": True, "DATA": data, "ADMIN_TOKEN": token}, instance_path=data + "/instance")
client = app.test_client()
auth = {"Authorization": "Bearer " + token}
boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(open(plan, "rb").read()), filename="plan.txt")})
results = {
    "upload": client.post("/admin/documents", data=body, headers=auth,
                          content_type="multipart/form-data; boundary=" + boundary),
    "rollback": client.post("/admin/rollback", json={"version": sys.argv[4]}, headers=auth),
    "reindex": client.post("/admin/reindex", headers=auth),
    "ask": client.post("/api/ask", json={"question": "班额有什么规定？"}),
}
print(json.dumps({name: [r.status_code, r.get_json()] for name, r in results.items()}, ensure_ascii=False))
"""


def test_a_read_only_data_dir_is_named_in_every_refusal(tmp_path, two_versions) -> None:
    """The data dir is bind-mounted read-only in a private mount namespace (gone when the child exits)."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a read-only folder")
    from index.library import add_paths

    data, older, _newer = two_versions
    add_paths(data, [PLAN])  # something to re-index
    script = tmp_path / "probe.py"
    script.write_text(READ_ONLY_PROBE, encoding="utf-8")
    mount = f'mount --bind "{data}" "{data}" && mount -o remount,bind,ro "{data}" && exec "$0" "$@"'
    child = subprocess.run(["unshare", "-m", "sh", "-c", mount, sys.executable, str(script), str(data), str(PLAN),
                            TOKEN, older], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(child.stdout.strip().splitlines()[-1])
    for name in ("upload", "rollback", "reindex"):
        status, body = results[name]
        assert status == 503, (name, body)
        assert body["error"].startswith("数据目录无法写入：") and str(data) in body["error"], (name, body)
        assert "Read-only file system" in body["error"] or "readonly" in body["error"], (name, body)
    status, body = results["ask"]
    assert status == 503 and "try again later" in body["error"], body


# -- risk: a rollback while a build runs ------------------------------------------------------------


def test_a_rollback_while_a_build_runs_is_refused_with_409(make, two_versions) -> None:
    from index.store import build_lock, current_version

    data, older, newer = two_versions
    client = make({"ADMIN_TOKEN": TOKEN}, data=data).test_client()
    with build_lock(data):  # what a running build holds until it has published
        response = client.post("/admin/rollback", json={"version": older},
                               headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 409 and "roll back after it has finished" in response.json["detail"]
    assert current_version(data) == newer
    after = client.post("/admin/rollback", json={"version": older}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert after.status_code == 200 and current_version(data) == older


# -- risk: a 200 that is not JSON is not a delivery -------------------------------------------------


class HtmlAPI:
    """A loopback stand-in for the WeChat API that hands out tokens but answers sends with an HTML page."""

    def __init__(self) -> None:
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the token
                self._send(b'{"access_token": "token-1", "expires_in": 7200}', "application/json")

            def do_POST(self) -> None:  # noqa: N802 - message/custom/send
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send(b"<html><body>502 Bad Gateway (a proxy)</body></html>", "text/html")

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_200_without_json_from_the_message_api_is_not_logged_as_delivered(caplog) -> None:
    from bot.answering import AnswerRunner
    from bot.platforms import OfficialAccountClient, OfficialAccountCourier

    api = HtmlAPI()
    courier = OfficialAccountCourier(OfficialAccountClient("wx0123456789abcdef", "secret", api_base=api.base))
    runner = AnswerRunner(budget_s=0.0, workers=1)
    caplog.set_level(logging.INFO, logger="bot.answering")
    try:
        assert runner.answer("wechat:u:1", lambda: (time.sleep(0.05), "答案")[1],
                             lambda text: courier.deliver("oUser", text)) is None
        runner.shutdown()
    finally:
        courier.close()
        api.close()
    lines = [r.getMessage() for r in caplog.records]
    assert any("could not be delivered" in line and "without a JSON body" in line for line in lines), lines
    assert not any(line.endswith("delivered") and "could not" not in line for line in lines), lines


# -- risk: a rate limit per client address and per user -------------------------------------------------


def test_api_ask_is_rate_limited_per_address(make, bot_data) -> None:
    client = make({"RATE_PER_MINUTE": 3}, data=bot_data).test_client()

    def ask(address: str):
        return client.post("/api/ask", json={"question": "帮助"}, environ_base={"REMOTE_ADDR": address})

    statuses = [ask("203.0.113.7").status_code for _ in range(4)]
    limited = ask("203.0.113.7")
    assert statuses == [200, 200, 200, 429] and limited.status_code == 429
    assert limited.json["error"].startswith("too many questions") and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert ask("203.0.113.8").status_code == 200  # another client
    assert ask("127.0.0.1").status_code == 200  # loopback: a local proxy or the operator


def test_a_webhook_user_over_the_limit_gets_a_polite_line(make, bot_data) -> None:
    from bot.ratelimit import SLOW_DOWN

    app = make({"WECHAT_TOKEN": TOKEN_WECHAT, "RATE_PER_MINUTE": 2}, data=bot_data)
    client, wechat = app.test_client(), WeChatServer()

    def ask(user: str) -> str:
        push = wechat.push(wechat.text("帮助", user=user))
        return wechat.open_reply(client.post("/wechat", query_string=push.query, data=push.body).data)["Content"]

    replies = [ask(USER) for _ in range(3)]
    assert replies[0] == replies[1] != SLOW_DOWN and replies[2] == SLOW_DOWN
    assert ask("oAnotherUser000000000000002") != SLOW_DOWN
    assert len(get_service(app).storage.questions()) == 3  # the refused one was not answered, so not logged


# -- risk: the question log is pruned -----------------------------------------------------------------


def test_the_question_log_keeps_log_days_and_is_pruned_at_start(make, bot_data) -> None:
    from bot.storage import FILENAME, LogEntry, Storage

    old = Storage(bot_data / FILENAME)
    for days_ago in (200, 100, 1):
        old.log_question(LogEntry("web", old.hash("u"), f"{days_ago} days ago", "answer", False, None, None, 0.9,
                                  1.0, asked_at=time.time() - days_ago * 86400))
    old.close()
    app = make({"LOG_DAYS": 150}, data=bot_data)
    assert [e.question for e in get_service(app).storage.questions()] == ["100 days ago", "1 days ago"]


def test_deleting_the_database_while_serving_the_jobs_is_no_500(make, bot_data) -> None:
    from bot.storage import FILENAME as JOBS

    client = make({"ADMIN_TOKEN": TOKEN}, data=bot_data).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/admin/jobs", headers=auth).status_code == 200
    (bot_data / JOBS).unlink()
    response = client.get("/admin/jobs", headers=auth)
    assert response.status_code == 200 and response.json == {"jobs": []}
