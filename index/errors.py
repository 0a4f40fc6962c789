"""Exceptions raised by the retrieval library.

One base class, :class:`RetrievalError`; subclasses add meaning, not code.
Callers (the CLI, the bot) translate them into user-facing messages once.
"""


class RetrievalError(Exception):
    """Base class of every error raised by :mod:`index`."""


class CorpusError(RetrievalError):
    """A document cannot be read or parsed (bad format, empty, encrypted, bad encoding)."""


class IndexNotFound(RetrievalError):
    """No published index exists where one was expected."""


class IndexMismatch(RetrievalError):
    """A stored index was built with another embedder or tokenizer than the query side uses."""


class BuildLocked(RetrievalError):
    """Another index build holds the lock."""
