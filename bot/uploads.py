"""What the admin API does with an uploaded file before the library sees it: a safe file
name (cut by UTF-8 bytes), the optional ``title`` and ``year`` form fields, and a private
staging folder under the data dir that is removed afterwards, or, if the worker was
killed mid-upload, by the next worker that starts (:func:`sweep_uploads`).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from werkzeug.exceptions import BadRequest

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 200  # UTF-8 bytes: file systems allow 255 per name, and a Chinese character takes 3
MAX_TITLE_CHARS = 200
YEARS = range(1900, 2101)
FOLDER = "uploads"
_UNSAFE_NAME_CHARS = set('<>:"|?*\\/')


def safe_filename(name: str) -> str:
    """``name`` reduced to a safe file name: the last path part, no control or reserved
    characters, no leading dots, at most :data:`MAX_NAME_CHARS` characters and
    :data:`MAX_NAME_BYTES` UTF-8 bytes (cut by bytes, never inside a character); unlike
    werkzeug's ``secure_filename`` it keeps Chinese characters.

    :raise BadRequest: nothing usable is left.
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    kept = "".join(c for c in base if c not in _UNSAFE_NAME_CHARS and not unicodedata.category(c).startswith("C"))
    kept = " ".join(kept.split()).lstrip(". ").rstrip(". ")
    stem, dot, suffix = kept.rpartition(".")
    if not stem:  # no suffix: the whole name is the stem
        stem, dot, suffix = suffix, "", ""
    suffix = clip_utf8(suffix, 16)  # a real one is short; a long one is refused later as unsupported
    stem = stem[: MAX_NAME_CHARS - len(dot + suffix)]
    stem = clip_utf8(stem, MAX_NAME_BYTES - len((dot + suffix).encode("utf-8"))).rstrip(". ")
    if not stem:
        raise BadRequest(f"the file name {name[:60]!r} has no usable characters; rename the file")
    return f"{stem}{dot}{suffix}"


def clip_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def overrides(form: Mapping[str, str]) -> tuple[str | None, int | None]:
    """The optional ``title`` and ``year`` form fields (blank: not given).

    :raise BadRequest: the title is too long or the year is not a year.
    """
    title = " ".join((form.get("title") or "").split()).strip("《》") or None
    if title is not None and len(title) > MAX_TITLE_CHARS:
        raise BadRequest(f'"title" must be at most {MAX_TITLE_CHARS} characters (got {len(title)})')
    raw = (form.get("year") or "").strip()
    if not raw:
        return title, None
    if not (raw.isascii() and raw.isdigit() and int(raw) in YEARS):
        raise BadRequest(f'"year" must be a year from {YEARS.start} to {YEARS.stop - 1} (got {raw[:20]!r})')
    return title, int(raw)


@contextmanager
def staging(data_dir: Path) -> Iterator[Path]:
    """A fresh folder for one upload under ``<data_dir>/uploads/``, removed on the way out."""
    root = Path(data_dir) / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{os.getpid()}-{secrets.token_hex(6)}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_uploads(data_dir: Path, *, older_than_s: float = 3600.0) -> list[str]:
    """Remove the staging folders of uploads whose worker is gone (killed mid-upload), and any
    older than ``older_than_s``; returns their names."""
    root = Path(data_dir) / FOLDER
    if not root.is_dir():
        return []
    removed = []
    now = time.time()
    for folder in root.iterdir():
        pid = folder.name.partition("-")[0]
        try:
            stale = not (pid.isdigit() and _alive(int(pid))) or now - folder.stat().st_mtime > older_than_s
        except FileNotFoundError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    if removed:
        log.info("removed %d upload folder(s) left by stopped workers", len(removed))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
