"""This host's copy of the library and index that every host shares (``POLICYBOT_DATABASE_URL``).

With several hosts, PostgreSQL holds the truth (:mod:`bot.storage.shared`): the documents, the
packed index versions and the pointer to the served one. Each host keeps its own
``POLICYBOT_DATA`` as a cache of them, so that searching never leaves the machine:

- :meth:`Replica.sync` makes the cache match: documents added, replaced or removed on any host
  are installed here (``index.library``), and when the shared pointer names another version
  than the local ``current``, its pack is downloaded, its checksum verified and it is installed
  and published locally (``index.store.install_version``) — the searcher provider of every
  worker then swaps it in as for a local publish.
- The sync thread (:meth:`Replica.start`, in each ``policybot serve`` worker) runs a sync when a
  change is announced (``LISTEN``) and every :data:`POLL_S` seconds anyway, in case a
  notification was lost (a dropped connection). A file lock makes the workers of a host, and a
  CLI command on it, take turns.
- What an admin changes on any host goes to PostgreSQL first-hand: :meth:`add_document`,
  :meth:`remove_document`, :meth:`rollback`, and :meth:`build` — the re-index, run by one host
  at a time under the build lease (:mod:`bot.jobs`): sync the documents, build, publish
  locally, store the pack, then move the pointer, in that order.
- A database that no host has published to yet adopts the library and served version of the
  first host that finds it so (:meth:`_adopt`): turning on ``POLICYBOT_DATABASE_URL`` on an
  existing machine keeps its documents.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import BotError
from bot.storage.shared import BuildLease, Listener, SharedLibrary
from index.errors import BuildLocked, CorpusError, IndexNotFound, RetrievalError

if TYPE_CHECKING:
    from bot.storage.pg import PgStorage
    from index.build import Progress
    from index.library import DocumentRecord

log = logging.getLogger(__name__)

POLL_S = 1.0  # the fallback when a notification is lost: every host switches within 2 s anyway
RETRY_S = 30.0  # a version that failed to install is tried again after this long
LOCK_FILE = ".replica.lock"


class PackDamaged(BotError):
    """A version's pack from the shared database is not what was stored (checksum, or not a tar)."""


class Replica:
    """This host's copy (``data_dir``) of the shared library and index in ``storage``'s database."""

    def __init__(self, storage: PgStorage, data_dir: Path, *, keep: int) -> None:
        self.storage = storage
        self.data_dir = Path(data_dir)
        self.keep = keep
        self.shared = SharedLibrary(storage)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[str, float] = {}  # version → when to try installing it again

    # -- keeping the copy ---------------------------------------------------------------------

    @contextmanager
    def host_lock(self) -> Iterator[None]:
        """This host's copy changes in one place at a time (sync threads of every worker, a CLI
        command): an exclusive lock on a file in ``data_dir``, released by the kernel if we die."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / LOCK_FILE, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def sync(self) -> None:
        """Make this host's documents and served version those of the shared database."""
        with self.host_lock():
            current = self.shared.current()
            if current is None and not self.shared.documents():
                self._adopt()
                return
            self._sync_documents(published=current is not None)
            if current is not None:
                self._sync_index(current)

    def _sync_documents(self, *, published: bool | None = None) -> None:
        """``published``: whether the shared pointer names a version (asked when not given)."""
        from index.library import install_document, list_documents, remove_document

        wanted = self.shared.documents()
        local = {record.doc_id: asdict(record) for record in list_documents(self.data_dir)}
        for doc_id, record in wanted.items():
            key = f"document {doc_id} {record.get('sha256')}"
            if local.get(doc_id) == record or time.monotonic() < self._failed.get(key, 0.0):
                continue
            try:
                if (found := self.shared.original(doc_id)) is not None:
                    install_document(self.data_dir, *found)
                    log.info("document %s installed from the shared library", doc_id)
            except CorpusError as exc:  # one bad row must not stop the others, nor the index
                self._failed[key] = time.monotonic() + RETRY_S
                log.error("document %s of the shared library was not installed: %s", doc_id, exc)
        if not (self.shared.current() is not None if published is None else published):
            # nothing published yet: a first host's adoption may have stopped half-way, and its
            # documents not yet uploaded must not be archived on every host
            return
        for doc_id in local.keys() - wanted.keys():
            remove_document(self.data_dir, doc_id)  # archived, as a removal on this host would be
            log.info("document %s removed: it is no longer in the shared library", doc_id)

    def _sync_index(self, version: str) -> None:
        from index.store import check_version, current_version, install_version, prune_versions

        if current_version(self.data_dir) == version or time.monotonic() < self._failed.get(version, 0.0):
            return
        started = time.monotonic()
        try:
            # A version kept here (a rollback) is only published; another one is fetched.
            files = {} if check_version(self.data_dir, version).intact else self._download(version)
            install_version(self.data_dir, version, files)
        except BuildLocked:
            return  # a local build (a CLI command) holds the index: the next round installs it
        except Exception:
            self._failed[version] = time.monotonic() + RETRY_S
            raise
        prune_versions(self.data_dir, keep=self.keep)
        log.info("index version %s installed from the shared database in %.2f s", version,
                 time.monotonic() - started)

    def _download(self, version: str) -> dict[str, bytes]:
        """The files of ``version``'s pack, after checking the pack against its stored checksum.

        :raise PackDamaged: the pack is missing, does not match its checksum, or is not a tar.
        """
        found = self.shared.pack(version)
        if found is None:
            raise PackDamaged(f"index version {version} has no pack in the shared database")
        pack, sha256 = found
        if hashlib.sha256(pack).hexdigest() != sha256:
            raise PackDamaged(f"the pack of index version {version} does not match its SHA-256 "
                              f"(damaged in the database or on the way); it was not installed")
        return unpack(pack, version)

    def _adopt(self) -> None:
        """Bring this host's library and served version to a shared database nothing was published
        to: the first host started against it seeds it (the build lease keeps it to one host)."""
        from index.library import list_documents
        from index.store import index_health, version_manifest

        records, served = list_documents(self.data_dir), index_health(self.data_dir).served
        if not records and served is None:
            return
        lease = BuildLease.take(self.storage.url)
        if lease is None:
            return  # another host is adopting (or building): the next round follows it
        try:
            if self.shared.current() is not None or self.shared.documents():
                return
            for record in records:
                self._upload(record.doc_id)
            if served is not None and not version_manifest(self.data_dir, served).get("files"):
                # built before versions listed their files: no other host could check it and
                # install it, so only the documents are shared until the next re-index
                log.warning("index %s predates file checksums and is not shared; re-index once", served)
            elif served is not None:
                self.publish(served, reason="adopt")
            log.info("the shared database adopted this host's %d document(s) and index %s", len(records), served)
        finally:
            lease.release()

    def _upload(self, doc_id: str) -> None:
        from index.library import document_files

        self.shared.put_document(*document_files(self.data_dir, doc_id))

    # -- what an admin does on any host --------------------------------------------------------

    def add(self, adder: Callable[[Path], list[DocumentRecord]]) -> list[DocumentRecord]:
        """Run ``adder(data_dir)`` (``index.library``'s add functions: they parse and refuse a bad file
        before anything changes) on an up-to-date copy, then store what it added for every host."""
        with self.host_lock():
            self._sync_documents()
            records = adder(self.data_dir)
            for record in records:
                self._upload(record.doc_id)
        return records

    def remove_document(self, doc_id: str) -> DocumentRecord:
        """Take ``doc_id`` out of the library on every host (archived on each).

        :raise DocumentNotFound: no such document.
        """
        from index.library import DocumentNotFound, DocumentRecord, remove_document

        with self.host_lock():
            self._sync_documents()
            try:
                record = remove_document(self.data_dir, doc_id)
            except DocumentNotFound:
                # a shared row this host could not install (damaged): removing it must still work
                shared = self.shared.documents().get(doc_id)
                if shared is None or not self.shared.remove_document(doc_id):
                    raise
                return DocumentRecord(**shared)
            self.shared.remove_document(doc_id)
        return record

    def lease(self) -> BuildLease:
        """The build lease (:mod:`bot.jobs` holds it while one host builds).

        :raise BuildLocked: another host or process holds it.
        """
        lease = BuildLease.take(self.storage.url)
        if lease is None:
            raise BuildLocked("another index build is running (on this or another host); "
                              "try again when it has finished")
        return lease

    def build(self, lease: BuildLease, *, embedder: str, progress: Progress | None = None) -> str:
        """Re-index the shared library and serve it on every host; returns the version. The caller
        holds ``lease`` (:meth:`lease`), checked again before the pointer moves.

        :raise LeaseLost: the lease was lost meanwhile (the version stays local: another host may build).
        """
        from index.library import build_library_index

        with self.host_lock():
            self._sync_documents()  # what any host uploaded is in the database before its job was queued
            version = build_library_index(self.data_dir, embedder=embedder, progress=progress, keep=self.keep)
            lease.check()
            self.publish(version, reason="build")
        return version

    def publish(self, version: str, *, reason: str) -> None:
        """Serve the local ``version`` on every host: its pack is stored, then the pointer moves and
        the hosts are told (never the other way round: the pointer only names a complete pack)."""
        from index.store import version_files, version_manifest

        pack = pack_files(version_files(self.data_dir, version))
        manifest = version_manifest(self.data_dir, version)
        summary = {key: manifest.get(key) for key in ("created", "counts", "documents")}
        self.shared.put_version(version, pack, hashlib.sha256(pack).hexdigest(), summary, keep=self.keep)
        self.shared.move_current(version, reason)

    def rollback(self, version: str | None = None) -> tuple[str, str | None]:
        """Serve ``version`` (default: the stored version before the served one) on every host;
        returns it and the version served before.

        :raise IndexNotFound: no such version stored, or nothing older.
        :raise BuildLocked: a build is running (it would publish over the rollback).
        """
        try:
            lease = self.lease()
        except BuildLocked:
            raise BuildLocked("an index build is running and would replace the rolled-back version when it "
                              "publishes; roll back after it has finished") from None
        try:
            # read under the lease: a build that published (and pruned) meanwhile is rolled back one step
            previous, stored = self.shared.current(), self.shared.versions()
            if version is None:
                older = [v for v in stored if previous is None or v < previous]
                if not older:
                    raise IndexNotFound("no older index version to roll back to; `policybot index versions` lists them")
                version = older[-1]
            elif version not in stored:
                raise IndexNotFound(f"no index version {version!r} in the shared database")
            self.shared.move_current(version, "rollback")
        finally:
            lease.release()
        self.sync()  # this host at once; the others on the notification
        return version, previous

    # -- the sync thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Keep this host's copy in sync in a daemon thread until :meth:`close`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="policybot-replica", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        listener: Listener | None = None
        while not self._stop.is_set():
            try:
                if listener is None:
                    listener = Listener(self.storage.url)
                self.sync()
                listener.wait(POLL_S)  # a notification, or the poll's time
            except Exception as exc:  # the thread must outlive a database restart or a bad pack
                log.error("syncing with the shared database failed: %s", exc, exc_info=not _expected(exc))
                if listener is not None:
                    listener.close()
                    listener = None
                self._stop.wait(POLL_S)
        if listener is not None:
            listener.close()


def _expected(exc: Exception) -> bool:
    """Whether ``exc`` is a failure the log line says all of (no traceback needed)."""
    from bot.storage import database_errors
    from index.integrity import Damaged

    return isinstance(exc, (PackDamaged, Damaged, RetrievalError, *database_errors()))


def pack_files(files: Mapping[str, bytes]) -> bytes:
    """``files`` (path → bytes) as one gzip'd tar, in path order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def unpack(pack: bytes, version: str) -> dict[str, bytes]:
    """The files of a :func:`pack_files` pack (regular files only; names are checked on install).

    :raise PackDamaged: it is not a readable tar, or holds anything but files.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(pack), mode="r:gz") as tar:
            members = tar.getmembers()
            if any(not member.isfile() for member in members):
                raise PackDamaged(f"the pack of index version {version} holds something other than files")
            return {member.name: tar.extractfile(member).read() for member in members}  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackDamaged(f"the pack of index version {version} cannot be read ({type(exc).__name__})") from None


def add_files(paths: Sequence[Path], *, title: str | None = None,
              year: int | None = None) -> Callable[[Path], list[DocumentRecord]]:
    """The adder for :meth:`Replica.add` of ``policybot docs add`` / ``index build PATHS``."""
    from index.library import add_paths

    return lambda data_dir: add_paths(data_dir, list(paths), title=title, year=year)
