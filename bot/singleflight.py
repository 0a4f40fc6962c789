"""Calls with the same key that run at once in this process share one result (the pattern of Go's
``singleflight``): the first caller computes, the others wait for what it returns or raises."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """One computation per key in flight at a time, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, Future[T]] = {}

    def do(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, unless a call of ``key`` is running already: then its outcome."""
        with self._lock:
            running = self._calls.get(key)
            if running is None:
                self._calls[key] = mine = Future()
        if running is not None:
            return running.result()
        try:
            result = compute()
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(result)
            return result
        finally:
            with self._lock:
                del self._calls[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
