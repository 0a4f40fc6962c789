"""What each index version changed, in words an admin reads ("新增《…》，共 7 份文件")
instead of its id (``20261202T002435716516-22a8e6``).

A version's manifest lists its documents with a content hash; comparing it with the
manifest of the version built before it tells what was added, replaced (new content,
title or year) and removed. The caller reads the manifests (through the store);
:func:`describe_versions` only compares them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Titles named in one label at most; the rest are counted ("新增《甲》《乙》等 5 份").
MAX_TITLES = 2


def describe_versions(manifests: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, str]:
    """A label for each ``(version, manifest)`` pair, oldest first, by version name.

    A damaged version (empty manifest) gets "已损坏"; the next intact one is compared with
    the last intact one before it.
    """
    labels: dict[str, str] = {}
    previous: Mapping[str, Any] | None = None
    for version, manifest in sorted(manifests, key=lambda pair: pair[0]):
        if not manifest.get("documents") and not manifest.get("counts"):
            labels[version] = "已损坏"
            continue
        labels[version] = describe_change(previous, manifest)
        previous = manifest
    return labels


def describe_change(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """What ``after`` changed since ``before`` (None: the first version kept), with its document count."""
    docs = {d["doc_id"]: d for d in after.get("documents", [])}
    total = f"共 {len(docs)} 份文件"
    if before is None:
        return f"{_titles('收录', list(docs.values()))}，{total}"  # the oldest kept: nothing to compare with
    old = {d["doc_id"]: d for d in before.get("documents", [])}
    added = [d for key, d in docs.items() if key not in old]
    replaced = [d for key, d in docs.items() if key in old and _changed(old[key], d)]
    removed = [d for key, d in old.items() if key not in docs]
    parts = [_titles(verb, group) for verb, group in (("新增", added), ("替换", replaced), ("删除", removed))
             if group]
    return f"{'，'.join(parts) or '重建（文件未变）'}，{total}"


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(old.get(key) != new.get(key) for key in ("sha256", "title", "year"))


def _titles(verb: str, docs: Sequence[Mapping[str, Any]]) -> str:
    named = "".join(f"《{d.get('title') or d['doc_id']}》" for d in docs[:MAX_TITLES])
    more = f"等 {len(docs)} 份" if len(docs) > MAX_TITLES else ""
    return f"{verb}{named}{more}"
