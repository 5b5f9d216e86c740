"""The MLflow mirror's failed items: each is retried later, after a wait that doubles with
its attempts, so one item that keeps failing never holds back the ones after it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    attempts: int
    retry_at: float


class Retries:
    """Failed items by (kind, key): how often each failed, and when to try it again."""

    def __init__(
        self, first_wait: float, max_wait: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._first_wait = first_wait
        self._max_wait = max_wait
        self._clock = clock
        self._failures: dict[tuple[str, str], Failure] = {}

    def failed(self, kind: str, key: str) -> Failure:
        """Count a failure of the item; its next try waits ``first_wait * 2**(attempts-1)``
        seconds, at most ``max_wait``."""
        attempts = self.attempts(kind, key) + 1
        wait = min(self._max_wait, self._first_wait * 2 ** (attempts - 1))
        failure = Failure(attempts, self._clock() + wait)
        self._failures[(kind, key)] = failure
        return failure

    def succeeded(self, kind: str, key: str) -> None:
        self._failures.pop((kind, key), None)

    def attempts(self, kind: str, key: str) -> int:
        failure = self._failures.get((kind, key))
        return failure.attempts if failure is not None else 0

    def waiting(self, kind: str) -> set[str]:
        """The keys of ``kind`` whose next try is not due yet."""
        now = self._clock()
        return {k for (c, k), f in self._failures.items() if c == kind and f.retry_at > now}

    def __len__(self) -> int:
        return len(self._failures)
