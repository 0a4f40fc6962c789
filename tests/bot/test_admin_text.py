"""The admin API's errors in Chinese (:mod:`bot.admin_text`): each English message the library,
the job runner or the web layer can send gets its Chinese sentence with the same file name
and figures; Chinese passes as it is; anything else gets a Chinese sentence for its status."""

from __future__ import annotations

import pytest

from bot.admin_text import chinese
from bot.jobs import storage_problem

KNOWN = [
    ("计划.docx unpacks to 900 MiB of XML (901 MiB in all), over the limit of 200 MiB (400 MiB): a damaged "
     "file or a zip bomb; save it again from Word", "计划.docx 解压后异常庞大"),
    ("a.docx holds 9000 files; a .docx has a few dozen (at most 5000)", "a.docx 解压后异常庞大"),
    ("a.docx is a corrupt .docx (Bad magic number)", "a.docx 已损坏，无法打开"),
    ("scan.pdf has no text layer (a scanned PDF?); run OCR on it first", "scan.pdf 没有文字层（可能是扫描件）"),
    ("b.pdf is a corrupt PDF (EOF marker not found)", "b.pdf 已损坏，无法读取"),
    ("u.txt has a utf-16 BOM but is not valid utf-16", "u.txt 的开头标明是 utf-16 编码"),
    ("x.txt is really a PDF, not .txt text", "x.txt 其实是 PDF 文件，不是 .txt 文本"),
    ("big.pdf: parsing took longer than 60 s; the file is damaged or far too big (a zip bomb?)",
     "解析 big.pdf 超过 60 秒仍未完成"),
    ("big.pdf: parsing needs more than 1024 MiB of memory; the file is damaged or far too big (a zip bomb?)",
     "解析 big.pdf 需要超过 1024 MiB 内存"),
    ("big.pdf: the parser stopped (Killed); the file is damaged or too big", "解析 big.pdf 时解析程序意外退出"),
    ("two documents share the id 'plan': a.txt and b.txt", "有两份文件的 ID 都是 plan"),
    ("an index build is running and would replace the rolled-back version when it publishes; roll back after "
     "it has finished", "请等重建完成后再回滚"),
    ("no index in /srv/data/index; run `policybot index build` first", "还没有可用的索引"),
    ("no intact index version in /srv/index (x: damaged); run `policybot index build`", "没有完好的索引版本"),
    ('"question" must be at most 1000 characters (got 1200)', "问题最多 1000 个字"),
    ("the worker running this job stopped (no sign of life for 120 s); start the re-index again",
     "执行此任务的服务进程已停止"),
    ("internal error: KeyError: 'x'", "服务器内部错误"),
    # several hosts (bot.replica, bot.storage.jobs, bot.storage.shared)
    ("the host running this job stopped (it no longer holds the build lock); the index it served is unchanged: "
     "start the re-index again", "执行此任务的服务器已停止"),
    ("the build lock was lost (OperationalError); the build was not published", "失去了重建锁"),
    ("another index build is running (on this or another host); try again when it has finished",
     "另一个索引重建正在进行"),
    ("no index version '20990101' in the shared database", "没有这个索引版本（20990101）"),
]


@pytest.mark.parametrize(("english", "fragment"), KNOWN, ids=[k[1][:12] for k in KNOWN])
def test_known_messages_are_translated_keeping_names_and_figures(english, fragment):
    assert fragment in chinese(english)


def test_a_data_dir_that_cannot_be_written_keeps_only_the_chinese(tmp_path):
    problem = storage_problem(PermissionError(13, "Permission denied", str(tmp_path / "jobs.sqlite3")), tmp_path)
    said = chinese(problem, 503)
    assert said.startswith("数据目录无法写入") and "The data directory" not in said and str(tmp_path) in said


@pytest.mark.parametrize(("status", "fragment"), [(400, "请求无效"), (404, "找不到"), (405, "不支持此操作"),
                                                  (409, "操作冲突"), (413, "文件太大"), (500, "服务器内部错误")])
def test_unknown_english_gets_a_chinese_sentence_for_its_status(status, fragment):
    assert fragment in chinese("The browser (or proxy) sent a request that this server could not understand.",
                               status)


def test_chinese_passes_unchanged():
    assert chinese("常见问题已存在：请直接修改。", 409) == "常见问题已存在：请直接修改。"
