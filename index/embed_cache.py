"""The embedding cache of index builds: vectors by (embedder, content hash) in
``<data_dir>/cache/embeddings.sqlite3``, so an unchanged sentence is never embedded twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class EmbeddingCache:
    """SQLite map (embedder, content hash) → float32 vector."""

    def __init__(self, path: Path, embedder: str, dim: int) -> None:
        self.embedder, self.dim = embedder, dim
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("CREATE TABLE IF NOT EXISTS vectors (embedder TEXT, hash TEXT, vec BLOB, "
                        "PRIMARY KEY (embedder, hash))")

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc) -> None:
        self.db.commit()
        self.db.close()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            part = unique[start:start + 500]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(f"SELECT hash, vec FROM vectors WHERE embedder=? AND hash IN ({marks})",
                                   [self.embedder, *part])
            for key, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (self.dim,):
                    found[key] = vec
        return found

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                            [(self.embedder, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items])
        self.db.commit()
