"""Waiting on a coordinator's tasks: cancelled together when the job is, or one fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import ray
from ray import ObjectRef

from domain.errors import TrainingStopped
from pipeline.job_callbacks import JobCallbacks
from pipeline.search.hpo import STOP_CHECK_SECONDS

T = TypeVar("T")


def gather(
    refs: list[ObjectRef[T]],
    what: str,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[T]:
    """The results of a coordinator's tasks, asking ``stop`` every ``STOP_CHECK_SECONDS``
    whether the job was cancelled and telling ``progress`` the share done as tasks end;
    on a cancel or a failure every task is cancelled."""
    try:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=STOP_CHECK_SECONDS)
            if ready and progress is not None:
                progress(1 - len(pending) / len(refs))
            if pending and stop is not None and stop():
                raise TrainingStopped(f"{what} stopped: the job was cancelled")
        results: list[T] = ray.get(refs)
    except BaseException:
        for ref in refs:
            ray.cancel(ref)
        raise
    return results


def stop_of(callbacks: JobCallbacks | None) -> Callable[[], bool] | None:
    """Whether the job was cancelled, if the coordinator can ask."""
    return callbacks.is_cancelled if callbacks is not None else None
