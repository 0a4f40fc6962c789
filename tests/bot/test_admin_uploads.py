"""Uploads on the admin API beyond the error table: the preview of how a file was split (what
``policybot parse`` shows, nothing stored), the title and year confirmed after it, and the
test box, whose questions are logged but not counted in the public statistics."""

from __future__ import annotations

import json

import pytest

from bot.cli import cli
from bot.service import get_service
from bot.storage.log import ADMIN_CHANNEL
from tests.bot import test_admin as admin_tests
from tests.bot.test_admin import BAD_UPLOADS, Admin, _library_files, assert_error
from tests.conftest import LAW, LAW_TITLE, SEED

# The admin app over a copy of the seed library, as in test_admin.py.
warm_cache, seed_library, library = admin_tests.warm_cache, admin_tests.seed_library, admin_tests.library
app, client = admin_tests.app, admin_tests.client


def preview(client: Admin, name: str, content: bytes):
    return client.upload(name, content, path="/admin/documents/preview")


def test_preview_shows_what_parse_shows_and_stores_nothing(client, library, cli_runner):
    before = _library_files(library)
    response = preview(client, "义务教育法.md", LAW.read_bytes())
    assert response.status_code == 200, response.json
    shown = response.json
    assert (shown["id"], shown["filename"], shown["title"], shown["format"]) == ("义务教育法", "义务教育法.md",
                                                                                 LAW_TITLE, "md")
    assert shown["replaces"] is None and shown["duplicate_of"] is None and shown["encoding"] == "utf-8"
    parsed = json.loads(cli_runner.invoke(cli, ["parse", str(LAW), "--json"]).output)
    assert len(shown["outline"]) == len(parsed["sections"]) == shown["sections"]
    assert all(mine["heading"].endswith(cli_section["title"])
               for mine, cli_section in zip(shown["outline"], parsed["sections"], strict=True))
    assert [[i["title"] for i in s["items"]] for s in shown["outline"]] == [
        [i["title"] for i in s["items"]] for s in parsed["sections"]]
    assert [[i["sentences"] for i in s["items"]] for s in shown["outline"]] == [
        [i["sentences"] for i in s["items"]] for s in parsed["sections"]]
    assert shown["items"] == sum(len(s["items"]) for s in parsed["sections"])
    assert shown["sentences"] == sum(len(i["sentences"]) for s in shown["outline"] for i in s["items"])
    assert shown["outline"][0]["items"][0]["label"] == "第一条"
    assert _library_files(library) == before and not any((library / "uploads").iterdir())


def test_preview_says_which_document_it_replaces_or_repeats(client):
    changed = SEED.read_bytes().replace("衡阳".encode(), "衡州".encode())
    same_name = preview(client, "hengyang-2020-work-plan.txt", changed)
    assert same_name.json["replaces"] == {"id": "hengyang-2020-work-plan", "title": "衡阳市教育局2020年工作要点",
                                          "same_content": False}
    again = preview(client, "hengyang-2020-work-plan.txt", SEED.read_bytes())
    assert again.json["replaces"]["same_content"] is True and again.json["duplicate_of"] is None
    copy = preview(client, "副本.txt", SEED.read_bytes())
    assert copy.json["duplicate_of"]["id"] == "hengyang-2020-work-plan" and copy.json["replaces"] is None


@pytest.mark.parametrize(("name", "content", "status", "message"),
                         [b for b in BAD_UPLOADS if b[2] == 400 or b[0] == "huge.txt"], ids=lambda v: str(v)[:12])
def test_preview_refuses_bad_files_in_chinese(client, library, name, content, status, message):
    before = _library_files(library)
    assert_error(preview(client, name, content()), status, message)
    assert _library_files(library) == before


def test_title_and_year_confirmed_after_the_preview_go_into_the_library(client):
    response = client.upload("义务教育法.md", LAW.read_bytes(), title="义务教育法（2018 修正）", year="2018")
    assert response.status_code == 201, response.json
    listed = {d["id"]: d for d in client.documents()["documents"]}
    law = listed["义务教育法"]
    assert (law["title"], law["year"]) == ("义务教育法（2018 修正）", 2018) and law["title_set"] and law["year_set"]
    # The same file again with the same title and year changes nothing: refused, the record kept.
    again = client.upload("义务教育法.md", LAW.read_bytes(), title="义务教育法（2018 修正）", year="2018")
    assert_error(again, 409, "没有需要更新的")
    # Without them, the parsed title comes back (an upload with new overrides is a real change).
    reset = client.upload("义务教育法.md", LAW.read_bytes())
    assert reset.status_code == 201 and reset.json["title"] == LAW_TITLE and reset.json["replaced"] is True


@pytest.mark.parametrize(("fields", "message"), [({"year": "18"}, "年份应是 1900 到 2100"),
                                                 ({"title": "长" * 201}, "标题最多 200 个字")])
def test_bad_title_or_year_is_refused_in_chinese(client, fields, message):
    assert_error(client.upload("义务教育法.md", LAW.read_bytes(), **fields), 400, message)


def test_test_box_questions_are_logged_but_not_counted(client, app):
    for question in ("明天天气怎么样", "乡村教师有没有补贴？"):
        response = client.post("/admin/ask", json={"question": question})
        assert response.status_code == 200 and response.json["answer"], response.json
    assert client.client.post("/api/ask", json={"question": "明天天气怎么样"}).status_code == 200
    stats = client.get("/admin/stats").json
    assert (stats["questions"], stats["searches"], stats["answered"]) == (1, 1, 0)
    assert [(u["question"], u["count"]) for u in stats["unanswered"]] == [("明天天气怎么样", 1)]
    assert stats["top_items"] == []
    logged = [(e.channel, e.question) for e in get_service(app).storage.questions()]
    assert logged == [(ADMIN_CHANNEL, "明天天气怎么样"), (ADMIN_CHANNEL, "乡村教师有没有补贴？"),
                      ("web", "明天天气怎么样")]


def test_test_box_refuses_a_bad_question_in_chinese(client):
    assert_error(client.post("/admin/ask", json={"question": "问" * 1001}), 400, "问题最多 1000 个字")
    assert_error(client.post("/admin/ask", json={}), 400, "请输入要测试的问题")
