"""A pure priority queue of job ids: higher priority first, FIFO within a priority."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(order=True, frozen=True)
class _Entry:
    sort_key: tuple[int, datetime, int]
    job_id: str = field(compare=False)


class JobQueue:
    """Orders queued jobs by (-priority, created_at); removal is lazy and O(1)."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._live: dict[str, _Entry] = {}
        self._sequence = itertools.count()

    def push(self, job_id: str, priority: int, created_at: datetime) -> None:
        """Add a job; pushing a job that is already queued does nothing."""
        if job_id in self._live:
            return
        entry = _Entry((-priority, created_at, next(self._sequence)), job_id)
        self._live[job_id] = entry
        heapq.heappush(self._heap, entry)

    def pop(self) -> str | None:
        """Remove and return the next job id, or None when the queue is empty."""
        while self._heap:
            entry = heapq.heappop(self._heap)
            if self._live.get(entry.job_id) is entry:
                del self._live[entry.job_id]
                return entry.job_id
        return None

    def remove(self, job_id: str) -> bool:
        """Forget a job; returns whether it was queued."""
        return self._live.pop(job_id, None) is not None

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._live

    def __len__(self) -> int:
        return len(self._live)

    def ordered(self) -> list[str]:
        """The queued job ids in the order they will be popped."""
        return [e.job_id for e in sorted(self._heap) if self._live.get(e.job_id) is e]
