"""The orchestrator's own writes wait out a database outage instead of being lost.

A stage that finished, a job that completed or failed: while the database is unreachable
(``ServiceUnavailable``) the write is retried with exponential backoff, up to a limit. Any
other error is not retried. A write whose commit succeeded but whose answer was lost is
retried too: a transition then meets the status it already made, which the callers treat
as done; a progress write may then repeat its log lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from domain.errors import ServiceUnavailable, TrainingError

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: Backoff between attempts: 0.5 s doubling up to 10 s.
FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 10.0


async def durably(
    outage_seconds: float, write: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``await write(*args, **kwargs)``, retried through an outage of up to
    ``outage_seconds``; after that the last ``ServiceUnavailable`` is raised."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(ServiceUnavailable),
        wait=wait_exponential(multiplier=FIRST_WAIT_SECONDS, max=LONGEST_WAIT_SECONDS),
        stop=stop_after_delay(outage_seconds),
        before_sleep=_log_retry,
        reraise=True,
    )
    result: T = await retrying(write, *args, **kwargs)
    return result


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.warning("database unavailable (attempt %d); retrying: %s", state.attempt_number, error)


class BackgroundWrites:
    """Writes nobody waits for (log lines), each retried through an outage as ``durably``
    does; one given up on is logged. It holds their tasks: the event loop keeps only weak
    references."""

    def __init__(self, outage_seconds: float) -> None:
        self._outage_seconds = outage_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def write(
        self, write: Callable[P, Awaitable[object]], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        async def attempt() -> None:
            try:
                await durably(self._outage_seconds, write, *args, **kwargs)
            except TrainingError:
                logger.exception("a background write failed")

        task = asyncio.get_running_loop().create_task(attempt())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
