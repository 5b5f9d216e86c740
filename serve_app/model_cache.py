"""The prediction deployment's loaded models, bounded by their size: the least recently
used are dropped once the models kept pass the bound (a per-series model of many series
can weigh as much as hundreds of single ones, so a count bounds nothing)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

V = TypeVar("V")


class ModelCache(Generic[V]):
    """Values by key, loaded on a miss by ``load`` (the value and its size in bytes);
    each value is immutable for its key (a model version is never rewritten)."""

    def __init__(self, load: Callable[[str], tuple[V, int]], max_bytes: int) -> None:
        self._load = load
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = 0
        self._loading: dict[str, Future[V]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V:
        """The value of ``key``, kept unless it alone is larger than the bound. Requests
        that miss one key together wait for one load of it (each loading its own copy had
        held several copies of a large model at once, past the bound)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return entry[0]
            loading = self._loading.get(key)
            if loading is None:
                loading = self._loading[key] = Future()
                self._misses += 1
                loads = True
            else:
                self._hits += 1
                loads = False
        if not loads:
            return loading.result()
        try:
            value, size = self._load(key)  # outside the lock: loads of other keys go on
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            loading.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            if size <= self._max_bytes:
                self._entries[key] = (value, size)
                self._bytes += size
                while self._bytes > self._max_bytes:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._bytes -= dropped
        loading.set_result(value)
        return value

    def info(self) -> dict[str, int]:
        """Loads (misses) and reuses (hits) so far; the values kept and their bytes."""
        with self._lock:
            return {
                "hits": self._hits,
                "misses": self._misses,
                "size": len(self._entries),
                "bytes": self._bytes,
            }
