"""Is an index version whole? A SHA-256 of every file of a version is recorded in its
manifest when it is built (:func:`file_checksums`) and checked before it is loaded
(:func:`verify_version`): a truncated ``vectors.npy``, a garbage ``dense.faiss``, a deleted
``bm25/`` or files shuffled between versions are caught before they can crash a worker.

Problems are described with names relative to the version folder, never the data path:
they are shown on ``/healthz``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class Damaged(Exception):
    """A version failed its checks; the message says which file and how."""


@dataclass(frozen=True)
class VersionHealth:
    """One kept version: ``problem`` is None when it is intact."""

    version: str
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` but the manifest, keyed by its relative POSIX path."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): _sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def read_manifest(folder: Path) -> dict:
    """The version's manifest.

    :raise Damaged: it is missing, unreadable or not a JSON object.
    """
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Damaged(f"{MANIFEST} is missing") from None
    except (OSError, ValueError) as exc:
        raise Damaged(f"{MANIFEST} cannot be read ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        raise Damaged(f"{MANIFEST} is not an index manifest")
    return manifest


def verify_version(folder: Path) -> dict:
    """Check every file of the version at ``folder`` against its manifest; return the manifest.

    A version built before checksums were recorded passes (loading it is its only check).

    :raise Damaged: the folder or the manifest is missing, or a file is missing or changed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise Damaged("its folder is missing")
    manifest = read_manifest(folder)
    if manifest["version"] != folder.name:
        raise Damaged(f"{MANIFEST} belongs to version {manifest['version']!r}")
    expected = manifest.get("files")
    if expected is None:
        return manifest
    if not isinstance(expected, dict):
        raise Damaged(f"{MANIFEST} has no file list")
    for name, digest in sorted(expected.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise Damaged(f"{MANIFEST} names a file outside the version: {name!r}")
        try:
            actual = _sha256(folder / relative)
        except FileNotFoundError:
            raise Damaged(f"{name} is missing") from None
        except OSError as exc:
            raise Damaged(f"{name} cannot be read ({exc.strerror or type(exc).__name__})") from None
        if actual != digest:
            raise Damaged(f"{name} does not match its checksum (truncated, edited or swapped)")
    return manifest


def check_version(folder: Path) -> VersionHealth:
    """:func:`verify_version` as a value: the version's name and its problem (None if intact)."""
    try:
        verify_version(folder)
    except Damaged as exc:
        return VersionHealth(Path(folder).name, str(exc))
    return VersionHealth(Path(folder).name, None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class IndexHealth:
    """The kept versions' checks and what a worker would serve: the published version if it
    is intact, else the one :func:`index.store.load_index` falls back to."""

    published: str | None
    served: str | None
    versions: tuple[VersionHealth, ...]  # the published one first, then in fallback order

    @property
    def damaged(self) -> tuple[VersionHealth, ...]:
        return tuple(v for v in self.versions if not v.intact)


def index_health(data_dir: Path) -> IndexHealth:
    """Check every kept version of the index under ``data_dir`` (and the one ``current`` names)."""
    from index.store import current_version, fallback_order, index_root, list_versions

    published, root = current_version(data_dir), index_root(data_dir)
    versions = tuple(check_version(root / v) for v in fallback_order(published, list_versions(data_dir)))
    served = next((v.version for v in versions if v.intact), None)
    return IndexHealth(published, served, versions)
