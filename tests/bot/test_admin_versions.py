"""Index versions labelled by their time and what changed ("新增《…》，共 2 份文件"), not by
their ids: :func:`bot.admin_versions.describe_versions` on manifests, and ``GET /admin/versions``
over real builds."""

from __future__ import annotations

from bot.admin_versions import describe_versions
from index.library import add_paths, build_library_index, remove_document
from tests.bot import test_admin as admin_tests
from tests.conftest import LAW, LAW_TITLE

# The admin app over a copy of the seed library, as in test_admin.py.
warm_cache, seed_library, library = admin_tests.warm_cache, admin_tests.seed_library, admin_tests.library
app, client = admin_tests.app, admin_tests.client


def _manifest(*docs: tuple[str, str, str]) -> dict:
    return {"counts": {"documents": len(docs)},
            "documents": [{"doc_id": i, "title": t, "sha256": sha, "year": 2020} for i, t, sha in docs]}


def test_each_version_says_what_it_changed_since_the_one_before():
    a, b, b2, c, d = ("a", "甲", "1"), ("b", "乙", "2"), ("b", "乙", "3"), ("c", "丙", "4"), ("d", "丁", "5")
    labels = describe_versions([
        ("20260105", _manifest(a, b2, c, d)),
        ("20260101", _manifest(a)),
        ("20260102", _manifest(a, b)),
        ("20260103", {}),  # damaged: skipped when comparing
        ("20260104", _manifest(a, b2)),
        ("20260106", _manifest(a, c, d)),
        ("20260107", _manifest(a, c, d)),
        ("20260108", _manifest(("x", "戊", "6"), ("y", "己", "7"), ("z", "庚", "8"))),
    ])
    assert labels == {
        "20260101": "收录《甲》，共 1 份文件",
        "20260102": "新增《乙》，共 2 份文件",
        "20260103": "已损坏",
        "20260104": "替换《乙》，共 2 份文件",
        "20260105": "新增《丙》《丁》，共 4 份文件",
        "20260106": "删除《乙》，共 3 份文件",
        "20260107": "重建（文件未变），共 3 份文件",
        "20260108": "新增《戊》《己》等 3 份，删除《甲》《丙》等 3 份，共 3 份文件",
    }


def test_versions_api_labels_real_builds(client, library, warm_cache):
    add_paths(library, [LAW])
    build_library_index(library, cache_dir=warm_cache)
    remove_document(library, "hengyang-2020-work-plan")
    build_library_index(library, cache_dir=warm_cache)
    body = client.get("/admin/versions").json
    labels = [v["label"] for v in body["versions"]]  # newest first
    assert labels == ["删除《衡阳市教育局2020年工作要点》，共 1 份文件",
                      f"新增《{LAW_TITLE}》，共 2 份文件",
                      "收录《衡阳市教育局2020年工作要点》，共 1 份文件"]
    assert all(v["created"] for v in body["versions"]) and body["current"] == body["versions"][0]["version"]
