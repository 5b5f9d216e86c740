"""The prediction deployment's loaded models, bounded by their size: the least recently
used are dropped once the models kept pass the bound (a per-series model of many series
can weigh as much as hundreds of single ones, so a count bounds nothing)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
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
        self._lock = threading.Lock()

    def get(self, key: str) -> V:
        """The value of ``key``, kept unless it alone is larger than the bound."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return entry[0]
            self._misses += 1
        value, size = self._load(key)  # outside the lock: loads of other keys go on
        with self._lock:
            if key not in self._entries and size <= self._max_bytes:
                self._entries[key] = (value, size)
                self._bytes += size
                while self._bytes > self._max_bytes:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._bytes -= dropped
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
