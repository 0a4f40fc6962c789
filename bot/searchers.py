"""The searcher of the published index, swapped for a newer version without a restart
(:class:`SearcherProvider`): what :class:`bot.service.Service` and the dialog ask for the
index, once per message."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.searchcache import CachedSearcher
from index.errors import IndexNotFound

if TYPE_CHECKING:
    from index.search import Searcher

log = logging.getLogger(__name__)


class SearcherProvider:
    """The searcher of the published index under ``data_dir``, swapped for a newer version
    without a restart.

    The first call loads synchronously (a damaged published version is skipped for the
    newest intact one: see :func:`index.store.load_index`). After that a watcher thread
    reads the ``current`` pointer (one small file) every ``check_s`` seconds, whether or
    not requests come; when an admin published or rolled back to another version, it is
    checked and loaded in the background while requests keep being served by the old
    one, and the swap is a single reference assignment, so a request in flight finishes
    on the version it started with. A version that fails its checks is never swapped in;
    :attr:`damaged` lists it for ``/healthz``.
    """

    def __init__(self, data_dir: Path, *, embedder: str, check_s: float = 0.5, retry_s: float = 30.0) -> None:
        self.data_dir = Path(data_dir)
        self.embedder = embedder
        self.check_s = check_s
        self.retry_s = retry_s
        self.damaged: tuple[tuple[str, str], ...] = ()
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._loading: str | None = None
        self._failed: dict[str, float] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def __call__(self) -> Searcher:
        """The loaded searcher.

        :raise IndexNotFound: nothing is published yet, or no version is intact (checked again
            on every call until one is).
        :raise IndexMismatch: the index was built with another embedder.
        """
        searcher = self._searcher
        if searcher is None:
            with self._lock:  # one load per process, however many threads ask at once
                if self._searcher is None:
                    self._searcher = self._open()
                    self.damaged = _damaged(self._searcher)
                    self._watch()
                return self._searcher
        self._maybe_reload(searcher)
        return searcher

    @property
    def version(self) -> str | None:
        """The loaded index version; None before the first successful load."""
        return self._searcher.version if self._searcher is not None else None

    def close(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()

    def _watch(self) -> None:
        if self._watcher is None and not self._stop.is_set():
            self._watcher = threading.Thread(target=self._run_watcher, name="policybot-index-watch", daemon=True)
            self._watcher.start()

    def _run_watcher(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self._maybe_reload(self._searcher, force=True)
            except Exception:  # the watcher must outlive any one bad look at the folder
                log.exception("checking for a new index version failed")

    def _maybe_reload(self, searcher: Searcher | None, *, force: bool = False) -> None:
        from index.store import current_version

        now = time.monotonic()
        if searcher is None or (not force and now - self._checked < self.check_s):
            return
        self._checked = now
        published = current_version(self.data_dir)
        if published in (None, searcher.version, self._loading) or now < self._failed.get(published, 0):
            return
        with self._lock:
            if self._loading is not None:
                return
            self._loading = published
        threading.Thread(target=self._reload, args=(published,), name="policybot-reload", daemon=True).start()

    def _reload(self, version: str) -> None:
        from index.store import check_version

        try:
            health = check_version(self.data_dir, version)
            if not health.intact:
                self._refuse(version, health.problem or "damaged")
                return
            fresh = self._open(version)
        except Exception as exc:  # a bad version must never take down the one being served
            log.exception("index %s could not be loaded; still serving %s", version, self.version)
            self._refuse(version, f"cannot be loaded ({type(exc).__name__})", logged=True)
        else:
            if fresh.version != self.version:
                log.info("index switched from %s to %s", self.version, fresh.version)
                self._searcher = fresh
            self.damaged = _damaged(fresh)
            if fresh.version != version:  # it failed while loading: loading fell back (and said so)
                self._failed[version] = time.monotonic() + self.retry_s
        finally:
            self._loading = None

    def _refuse(self, version: str, problem: str, *, logged: bool = False) -> None:
        self._failed[version] = time.monotonic() + self.retry_s  # looked at again later: it may be repaired
        if (version, problem) not in self.damaged and not logged:
            log.error("index version %s is damaged (%s); still serving %s", version, problem, self.version)
        self.damaged = ((version, problem),)

    def _open(self, version: str | None = None) -> Searcher:
        from index.search import open_searcher
        from index.store import current_version, index_root, list_versions

        # Checked before open_searcher so that a missing index does not cost an embedder load per call.
        if current_version(self.data_dir) is None and not list_versions(self.data_dir):
            raise IndexNotFound(f"no index in {index_root(self.data_dir)}; run `policybot index build` first")
        searcher = open_searcher(self.data_dir, embedder=self.embedder)
        if version is not None and searcher.version != version:
            log.warning("index %s was replaced while loading; serving %s", version, searcher.version)
        log.info("index %s loaded from %s", searcher.version, self.data_dir)
        return CachedSearcher(searcher)  # type: ignore[return-value]  # a Searcher in all but search()'s memory


def _damaged(searcher: Searcher) -> tuple[tuple[str, str], ...]:
    """The versions skipped when ``searcher``'s index was loaded, as (version, problem)."""
    return getattr(getattr(searcher, "stored", None), "damaged", ())
