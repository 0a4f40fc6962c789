"""Is an index version whole? A SHA-256 of every file of a version is recorded in its
manifest when it is built (:func:`file_checksums`) and checked before it is loaded
(:func:`check_files`): a truncated ``vectors.npy``, a garbage ``dense.faiss``, a deleted
``bm25/`` or files shuffled between versions are caught before they can crash a worker.

This module only hashes files and compares them with a manifest it is given: reading the
manifest, and saying which versions are intact, is :mod:`index.store`'s job.

Problems are described with names relative to the version folder, never the data path:
they are shown on ``/healthz``.
"""

from __future__ import annotations

import hashlib
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


def file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` but the manifest, keyed by its relative POSIX path."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): _sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def check_files(folder: Path, manifest: dict) -> None:
    """Check every file of the version at ``folder`` against the checksums in its ``manifest``.

    A version built before checksums were recorded passes (loading it is its only check).

    :raise Damaged: a file is missing or changed, or the manifest's file list is malformed.
    """
    expected = manifest.get("files")
    if expected is None:
        return
    if not isinstance(expected, dict):
        raise Damaged(f"{MANIFEST} has no file list")
    for name, digest in sorted(expected.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise Damaged(f"{MANIFEST} names a file outside the version: {name!r}")
        try:
            actual = _sha256(Path(folder) / relative)
        except FileNotFoundError:
            raise Damaged(f"{name} is missing") from None
        except OSError as exc:
            raise Damaged(f"{name} cannot be read ({exc.strerror or type(exc).__name__})") from None
        if actual != digest:
            raise Damaged(f"{name} does not match its checksum (truncated, edited or swapped)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
