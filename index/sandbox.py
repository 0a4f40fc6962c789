"""Parse a document that nobody vetted (an upload) in a child process with a memory and a
time limit, so that the worst file costs seconds and a bounded amount of memory, and never
the worker that received it.

:func:`parse_isolated` runs ``python -m index.sandbox FILE DOC_ID MEMORY_MB`` in a fresh
interpreter (no fork of a threaded server), which caps its own address space with
``RLIMIT_AS`` and its CPU time with ``RLIMIT_CPU`` before it reads a byte, parses the file
with :func:`index.structure.parse_file` and prints the document as JSON. The parent kills
it after ``timeout_s``. Every way it can fail is a :class:`CorpusError` naming the file.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from index.domain import Document
from index.errors import CorpusError

MEMORY_MB = 1024
TIMEOUT_S = 20.0  # a 20 MB policy document parses in about a second
ROOT = Path(__file__).resolve().parent.parent
_CORPUS_ERROR, _OUT_OF_MEMORY = 2, 3


@dataclass(frozen=True)
class Parsed:
    """A parsed document and, for plain text, the encoding it was read with."""

    document: Document
    encoding: str


def parse_isolated(path: Path, *, doc_id: str, name: str | None = None, memory_mb: int = MEMORY_MB,
                   timeout_s: float = TIMEOUT_S) -> Parsed:
    """Parse ``path`` in a child process limited to ``memory_mb`` MiB and ``timeout_s`` seconds.

    ``name`` is how the admin knows the file (default: ``path``'s name).

    :raises CorpusError: the file cannot be parsed, or parsing needed more memory or time.
    """
    from index.domain import document_from_dict

    name = name or Path(path).name
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    command = [sys.executable, "-m", "index.sandbox", str(path), doc_id, str(memory_mb), str(int(timeout_s) + 1)]
    try:
        child = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise CorpusError(f"{name}: parsing took longer than {timeout_s:.0f} s; the file is damaged or far too "
                          "big (a zip bomb?)") from None
    if child.returncode == 0:
        data = json.loads(child.stdout)
        return Parsed(document_from_dict(data["document"]), data["encoding"])
    if child.returncode == _CORPUS_ERROR:
        raise CorpusError(json.loads(child.stdout)["error"])
    if child.returncode == _OUT_OF_MEMORY:
        raise CorpusError(f"{name}: parsing needs more than {memory_mb} MiB of memory; the file is damaged or "
                          "far too big (a zip bomb?)")
    reason = child.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {child.returncode}"]
    raise CorpusError(f"{name}: the parser stopped ({reason[0][:200]}); the file is damaged or too big")


def main(argv: list[str]) -> int:
    """The child: limit this process, parse ``argv[0]`` as ``argv[1]``, print JSON; exit 2 or 3 on failure."""
    path, doc_id, memory_mb, cpu_s = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    try:
        from index.loader import text_encoding
        from index.structure import parse_file

        document = parse_file(path, doc_id=doc_id)
        encoding = text_encoding(path) if document.format in ("txt", "md") else ""
        out = json.dumps({"document": asdict(document), "encoding": encoding}, ensure_ascii=False)
    except CorpusError as exc:
        print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        return _CORPUS_ERROR
    except (MemoryError, ImportError):  # under the limit an import fails to map its shared library
        return _OUT_OF_MEMORY
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
