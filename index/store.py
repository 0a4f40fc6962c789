"""The published index versions: the one module that reads and writes ``<data_dir>/index/``.

Layout under ``<data_dir>/index/``::

    current                 # text file naming the served version (replaced atomically)
    <version>/manifest.json # embedder, tokenizer, documents, counts, SHA-256 of each file; written last
    <version>/documents.json, chunks.json, vectors.npy, dense.faiss, bm25/
    .tmp-<version>/         # a build in progress; never loaded, removed by the next build
    .build.lock             # flock held while a build runs

It owns which version is served (:func:`current_version`, :func:`publish`, :func:`rollback`),
which are kept (:func:`list_versions`, :func:`prune_versions`), their manifests
(:func:`version_manifest`) and checks (:func:`index_health`), the build lock, writing a new
version (:func:`new_version`) and loading one (:func:`load_index`). What goes into a version is
decided by :mod:`index.build`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import numpy as np

from index.domain import Chunk, Document, document_from_dict
from index.errors import BuildLocked, IndexMismatch, IndexNotFound
from index.integrity import MANIFEST, Damaged, IndexHealth, VersionHealth, check_files, file_checksums

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StoredIndex:
    """A loaded, read-only index version."""

    path: Path
    manifest: dict
    documents: tuple[Document, ...]
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray
    faiss_index: object
    bm25: object
    #: Versions skipped because they failed their checks, as (version, problem): the served one
    #: is then not the published one, and /healthz says "degraded".
    damaged: tuple[tuple[str, str], ...] = ()

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def data_dir(self) -> Path:
        """The data directory this version was loaded from (``<data_dir>/index/<version>``)."""
        return self.path.parent.parent


def index_root(data_dir: Path) -> Path:
    return Path(data_dir) / "index"


def current_version(data_dir: Path) -> str | None:
    """The published version name, or None when nothing was published yet."""
    pointer = index_root(data_dir) / "current"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def list_versions(data_dir: Path) -> list[str]:
    """Complete versions (those with a manifest), oldest first."""
    root = index_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())


def publish(data_dir: Path, version: str) -> None:
    """Point ``current`` at ``version`` atomically (write a temp file, then rename over)."""
    root = index_root(data_dir)
    if not (root / version / MANIFEST).is_file():
        raise IndexNotFound(f"version {version!r} does not exist in {root}")
    tmp = root / f".current-{uuid.uuid4().hex}"
    tmp.write_text(version + "\n", encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, root / "current")


def rollback(data_dir: Path, version: str | None = None) -> str:
    """Serve ``version``, or the version published before the current one; returns it.

    Refused while a build runs: the build would publish over the rollback a moment later.

    :raises IndexNotFound: there is no such version, or nothing older to go back to.
    :raises BuildLocked: an index build is running.
    """
    versions = list_versions(data_dir)
    if version is None:
        served = current_version(data_dir)
        older = [v for v in versions if served is None or v < served]
        if not older:
            raise IndexNotFound("no older index version to roll back to; `policybot index versions` lists them")
        version = older[-1]
    try:
        with build_lock(data_dir):
            publish(data_dir, version)
    except BuildLocked:
        raise BuildLocked("an index build is running and would replace the rolled-back version when it "
                          "publishes; roll back after it has finished") from None
    return version


def prune_versions(data_dir: Path, *, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the served one); returns what was deleted."""
    served = current_version(data_dir)
    versions = list_versions(data_dir)
    doomed = [v for v in versions[: max(0, len(versions) - max(1, keep))] if v != served]
    for version in doomed:
        shutil.rmtree(index_root(data_dir) / version, ignore_errors=True)
    return doomed


# -- manifests and checks ----------------------------------------------------------------------


def read_manifest(data_dir: Path, version: str) -> dict:
    """The manifest of ``version``.

    :raise Damaged: it is missing, unreadable or not a JSON object naming its version.
    """
    _check_name(version)
    return _manifest_in(index_root(data_dir) / version)


def _manifest_in(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Damaged(f"{MANIFEST} is missing") from None
    except (OSError, ValueError) as exc:
        raise Damaged(f"{MANIFEST} cannot be read ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        raise Damaged(f"{MANIFEST} is not an index manifest")
    return manifest


def _check_name(version: str) -> None:
    if not version or "/" in version or version.startswith("."):
        raise Damaged("not a version name")


def version_manifest(data_dir: Path, version: str | None) -> dict:
    """The manifest of ``version`` (what was built: embedder, counts, documents with their
    SHA-256), or ``{}`` when there is no such version or its manifest cannot be read."""
    if not version:
        return {}
    try:
        return read_manifest(data_dir, version)
    except Damaged:  # missing or damaged: index_health says which
        return {}


def verify_version(data_dir: Path, version: str) -> dict:
    """Check every file of ``version`` against its manifest; return the manifest.

    :raise Damaged: the folder or the manifest is missing, or a file is missing or changed.
    """
    _check_name(version)
    if not (index_root(data_dir) / version).is_dir():
        raise Damaged("its folder is missing")
    manifest = read_manifest(data_dir, version)
    if manifest["version"] != version:
        raise Damaged(f"{MANIFEST} belongs to version {manifest['version']!r}")
    check_files(index_root(data_dir) / version, manifest)
    return manifest


def check_version(data_dir: Path, version: str) -> VersionHealth:
    """:func:`verify_version` as a value: the version's name and its problem (None if intact)."""
    try:
        verify_version(data_dir, version)
    except Damaged as exc:
        return VersionHealth(version, str(exc))
    return VersionHealth(version, None)


def index_health(data_dir: Path) -> IndexHealth:
    """Check every kept version of the index under ``data_dir`` (and the one ``current`` names)."""
    published = current_version(data_dir)
    versions = tuple(check_version(data_dir, v) for v in fallback_order(published, list_versions(data_dir)))
    served = next((v.version for v in versions if v.intact), None)
    return IndexHealth(published, served, versions)


# -- versions built on another host ------------------------------------------------------------


def version_files(data_dir: Path, version: str) -> dict[str, bytes]:
    """Every file of the intact ``version`` by its path in the version's folder (:func:`install_version`'s
    input on another host). :raise Damaged: the version fails its checks."""
    folder = index_root(data_dir) / verify_version(data_dir, version)["version"]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def install_version(data_dir: Path, version: str, files: Mapping[str, bytes]) -> None:
    """Put ``version``, built on another host, into place and publish it: written into a hidden folder
    and checked against a manifest that lists every file, then renamed into place, so a damaged copy
    never reaches the index (a version already here intact is only published).

    :raise Damaged: the files are not that version or fail its checks; nothing here has changed.
    :raise BuildLocked: a build is running here.
    """
    _check_name(version)
    root, tmp = index_root(data_dir), index_root(data_dir) / f".tmp-{version}"
    with build_lock(data_dir):
        if not check_version(data_dir, version).intact:
            try:
                for name, data in files.items():
                    relative = PurePosixPath(name)
                    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                        raise Damaged(f"a file outside the version: {name!r}")
                    (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / relative).write_bytes(data)
                manifest = _manifest_in(tmp)
                if manifest["version"] != version or set(manifest.get("files") or ()) != set(files) - {MANIFEST}:
                    raise Damaged(f"{MANIFEST} is not version {version!r}'s, or lists other files than those received")
                check_files(tmp, manifest)
                shutil.rmtree(root / version, ignore_errors=True)  # a damaged copy of it
                os.replace(tmp, root / version)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        publish(data_dir, version)


# -- loading ------------------------------------------------------------------------------------


def load_index(data_dir: Path, *, embedder_name: str, tokenizer_info: dict | None = None,
               version: str | None = None) -> StoredIndex:
    """Load ``version``, or the published version, read-only, after checking its files.

    When the published version fails its checks (a file missing, truncated, edited or
    swapped; ``current`` naming a missing version), the newest intact version before it
    is loaded instead (else the newest intact one), with one log line, and the skipped
    versions are listed in :attr:`StoredIndex.damaged`. A named ``version`` is never
    replaced.

    :raises IndexNotFound: nothing published, or no version is intact.
    :raises IndexMismatch: built by another embedder or tokenizer than the query side uses.
    """
    root = index_root(data_dir)
    if version is not None:
        return _load_checked(data_dir, version, embedder_name, tokenizer_info)
    published, kept = current_version(data_dir), list_versions(data_dir)
    if published is None and not kept:
        raise IndexNotFound(f"no index in {root}; run `policybot index build` first")
    damaged: list[tuple[str, str]] = [] if published else [("current", "no version is published")]
    for candidate in fallback_order(published, kept):
        try:
            stored = _load_checked(data_dir, candidate, embedder_name, tokenizer_info)
        except IndexMismatch:
            if candidate == published:
                raise  # the configuration is wrong, not the files: say so rather than serve an old version
            damaged.append((candidate, "built with another embedder or tokenizer"))
        except Damaged as exc:
            damaged.append((candidate, str(exc)))
        else:
            if damaged:
                log.error("index version %s is damaged (%s); serving %s instead", damaged[0][0], damaged[0][1],
                          candidate)
            return replace(stored, damaged=tuple(damaged))
    problems = "; ".join(f"{v}: {p}" for v, p in damaged)
    raise IndexNotFound(f"no intact index version in {root} ({problems}); run `policybot index build`")


def fallback_order(published: str | None, kept: Sequence[str]) -> list[str]:
    """The published version, then older ones newest first, then newer ones: the order in which
    versions are tried when the published one is damaged."""
    kept = [v for v in kept if v != published]
    older = [v for v in reversed(kept) if published is None or v < published]
    newer = [v for v in kept if published is not None and v > published]
    return ([published] if published else []) + older + newer


def _load_checked(data_dir: Path, version: str, embedder_name: str, tokenizer_info: dict | None) -> StoredIndex:
    """Verify and load one version.

    :raises Damaged: it fails its checks, or its files cannot be loaded.
    """
    import bm25s
    import faiss

    manifest = verify_version(data_dir, version)
    _check_compatible(manifest, embedder_name, tokenizer_info)
    path = index_root(data_dir) / version
    try:
        documents = tuple(document_from_dict(d) for d in _read_json(path / "documents.json"))
        chunks = tuple(Chunk(**c) for c in _read_json(path / "chunks.json"))
        # Vectors are memory-mapped: only the rows of candidate items are ever touched per query.
        vectors = np.load(path / "vectors.npy", mmap_mode="r", allow_pickle=False)
        dense = faiss.read_index(str(path / "dense.faiss"))
        lexical = bm25s.BM25.load(str(path / "bm25"), show_progress=False, mmap=False)
    except Exception as exc:  # a version built before checksums, or damaged in a way they missed
        raise Damaged(f"cannot be loaded ({type(exc).__name__})") from exc
    if len(vectors) != len(chunks) or dense.ntotal != len(chunks):
        raise Damaged(f"{len(chunks)} chunks but {len(vectors)} vectors and {dense.ntotal} in dense.faiss")
    return StoredIndex(path, manifest, documents, chunks, vectors, dense, lexical)


def _check_compatible(manifest: dict, embedder_name: str, tokenizer_info: dict | None) -> None:
    try:
        built_with, built_tokenizer = manifest["embedder"]["name"], dict(manifest["tokenizer"])
    except (KeyError, TypeError, ValueError):
        raise Damaged(f"{MANIFEST} names no embedder or tokenizer") from None
    if built_with != embedder_name:
        raise IndexMismatch(f"the index was built with embedder {built_with!r} but {embedder_name!r} is "
                            "configured; set POLICYBOT_EMBEDDER to match or run `policybot index build`")
    # Synonyms only expand questions, so editing them needs no rebuild; the rest shapes document tokens.
    keys = ("userdict_sha", "stopwords_sha", "version")
    built = {k: built_tokenizer.get(k) for k in keys}
    if tokenizer_info is not None and built != {k: tokenizer_info.get(k) for k in keys}:
        raise IndexMismatch("the index was built with another jieba dictionary or stop-word list; "
                            "run `policybot index build`")


# -- writing a new version ----------------------------------------------------------------------


@contextmanager
def build_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking file lock for the duration of a build."""
    root = index_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(f"another index build is running on {data_dir}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class NewVersion:
    """A version being written into a hidden folder; :meth:`save` completes and publishes it."""

    def __init__(self, data_dir: Path) -> None:
        # Names sort in build order (rollback and pruning rely on it), down to the microsecond.
        self.name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]
        self.data_dir = Path(data_dir)
        self.tmp = index_root(data_dir) / f".tmp-{self.name}"

    def save(self, *, documents: Sequence[Document], chunks: Sequence[Chunk], vectors: np.ndarray,
             dense: object, lexical: object, manifest: dict) -> str:
        """Write the version's files, then its manifest (``manifest`` plus format, name, time and
        checksums) last, move it into place and publish it; returns its name."""
        import faiss

        np.save(self.tmp / "vectors.npy", vectors, allow_pickle=False)
        faiss.write_index(dense, str(self.tmp / "dense.faiss"))
        lexical.save(str(self.tmp / "bm25"), show_progress=False)  # type: ignore[attr-defined]
        _write_json(self.tmp / "documents.json", [asdict(d) for d in documents])
        _write_json(self.tmp / "chunks.json", [asdict(c) for c in chunks])
        created = datetime.now(UTC).isoformat(timespec="seconds")
        head = {"format": FORMAT_VERSION, "version": self.name, "created": created}
        _write_json(self.tmp / MANIFEST, {**head, **manifest, "files": file_checksums(self.tmp)})
        os.replace(self.tmp, index_root(self.data_dir) / self.name)  # a folder without a manifest is never loaded
        publish(self.data_dir, self.name)
        return self.name


@contextmanager
def new_version(data_dir: Path) -> Iterator[NewVersion]:
    """Hold the build lock while a new version is prepared and saved; a build that fails (or is
    killed) publishes nothing, and its half-written folder is removed (by the next build, if killed).

    :raises BuildLocked: another build is running.
    """
    root = index_root(data_dir)
    with build_lock(data_dir):
        _remove_leftovers(root)
        version = NewVersion(data_dir)
        version.tmp.mkdir()
        try:
            yield version
        finally:
            shutil.rmtree(version.tmp, ignore_errors=True)  # gone already when it was saved


def _remove_leftovers(root: Path) -> None:
    """Delete half-written versions left by a build that was killed."""
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for tmp in root.glob(".current-*"):
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
