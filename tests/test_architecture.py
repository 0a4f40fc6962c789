"""The import rules of docs/ARCHITECTURE.md, checked with ``ast`` over every module:
``index/`` never imports ``bot`` (nor flask: it is a library), ``bot/channels/`` never import
``index``, and no module of ``bot/`` outside ``bot/storage/`` runs SQL. Each rule is also run
on a small tree that breaks it, to prove the check can fail."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Rule:
    """Modules under ``where`` (a package path) must not import any of ``forbidden`` (top-level names)."""

    where: str
    forbidden: tuple[str, ...]


IMPORT_RULES = (
    Rule("index", ("bot", "flask")),
    Rule("bot/channels", ("index",)),
)
SQL_CALLS = {"execute", "executemany", "executescript"}


def modules(root: Path, where: str) -> Iterator[Path]:
    yield from sorted((root / where).rglob("*.py"))


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved, wherever
    they stand (functions, ``TYPE_CHECKING`` blocks)."""
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            yield node.lineno, name


def import_violations(root: Path, rules: tuple[Rule, ...] = IMPORT_RULES) -> list[str]:
    found = []
    for rule in rules:
        for path in modules(root, rule.where):
            for line, name in imported(root, path):
                if name.split(".")[0] in rule.forbidden:
                    found.append(f"{path.relative_to(root)}:{line} imports {name} ({rule.where} must not)")
    return found


def sql_violations(root: Path) -> list[str]:
    """Calls of ``.execute``/``.executemany``/``.executescript`` in ``bot/`` outside ``bot/storage/``."""
    found = []
    for path in modules(root, "bot"):
        if path.relative_to(root).parts[:2] == ("bot", "storage"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                found.append(f"{path.relative_to(root)}:{node.lineno} runs SQL (only bot/storage may)")
    return found


def test_index_never_imports_bot_and_channels_never_import_index() -> None:
    assert import_violations(ROOT) == []


def test_no_sql_outside_bot_storage() -> None:
    assert sql_violations(ROOT) == []


def test_the_rules_cover_every_module() -> None:
    # A rule over an empty or renamed folder would pass for nothing.
    assert len(list(modules(ROOT, "index"))) > 10 and len(list(modules(ROOT, "bot/channels"))) >= 4


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("name", "text"), [
    ("index/search.py", "from bot.dialog import Dialog\n"),
    ("index/search.py", "def f():\n    import bot.storage\n"),  # hidden in a function
    ("index/sub/deep.py", "from ...bot import config\n"),  # relative, out of the package
    ("index/app.py", "from flask import Flask\n"),
    ("bot/channels/wechat.py", "from index.search import Searcher\n"),
    ("bot/channels/wechat.py", "from ...index import store\n"),
    ("bot/channels/wechat.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import index.domain\n"),
])
def test_a_forbidden_import_is_caught(tmp_path: Path, name: str, text: str) -> None:
    root = _tree(tmp_path, {"index/__init__.py": "", "index/ok.py": "import numpy\n",
                            "bot/channels/__init__.py": "from bot.domain import Question\n", name: text})
    (violation,) = import_violations(root)
    assert violation.startswith(f"{name}:")


def test_allowed_imports_pass(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"index/search.py": "from index.domain import Hit\nfrom . import store\n",
                            "bot/channels/web.py": "from bot.service import get_service\nimport indexer\n"})
    assert import_violations(root) == []


def test_sql_outside_storage_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"bot/admin.py": "def f(conn):\n    conn.execute('SELECT 1')\n",
                            "bot/storage/log.py": "def g(conn):\n    conn.execute('SELECT 1')\n"})
    assert sql_violations(root) == ["bot/admin.py:2 runs SQL (only bot/storage may)"]
