"""A coordinator's tasks, one per reserved CPU at a time: none waits in Ray's queue.

A coordinator (a task holding no CPU) hands ``fan_out`` one starter per task; each starter
submits its task with the Ray options of the bundle it is given and returns the ref to
wait on. A task starts when one before it ends, so the job's work never asks Ray for more than
its reservation holds, and a failure or a cancel stops the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, TypeVar

import ray
from ray import ObjectRef

from domain.errors import TrainingStopped
from pipeline.job_callbacks import JobCallbacks
from pipeline.placement import Bundle, BundlePool

T = TypeVar("T")

#: How often a coordinator asks whether its job was cancelled.
STOP_CHECK_SECONDS = 2.0
#: How long tasks being cancelled get to stop, asked again every ``CANCEL_RETRY_SECONDS``,
#: before their workers are killed: Ray can lose a cancel that reaches a task in its first
#: moments, and that task would then hold its CPU to its end.
CANCEL_WAIT_SECONDS = 5.0
CANCEL_RETRY_SECONDS = 0.5

#: Submits one task with the given Ray options (``Bundle.options``) and returns its ref.
Starter = Callable[[dict[str, Any]], ObjectRef[T]]


def fan_out(
    starters: Sequence[Starter[T]],
    bundles: Sequence[Bundle],
    what: str,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
    cpus: int = 1,
) -> list[T]:
    """The results of one task per starter, in order: each holds ``cpus`` of a bundle, and
    no more start than the bundles hold. ``stop`` is asked every ``STOP_CHECK_SECONDS``
    whether the job was cancelled; ``progress`` hears the share done as tasks end.

    Raises:
        What a task raised; TrainingStopped: the job was cancelled. Either way the tasks
        still running are cancelled.
    """
    return list(in_order(starters, bundles, what, stop, progress, cpus))


def in_order(
    starters: Sequence[Starter[T]],
    bundles: Sequence[Bundle],
    what: str,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
    cpus: int = 1,
) -> Generator[T, None, None]:
    """``fan_out``'s results one at a time, in order, each as soon as it and those before
    it have ended: what is held is the result given and those that ended before their
    turn (with one task per reserved CPU, a few). Leaving the loop early cancels the
    running tasks."""
    pool = BundlePool(bundles, cpus)
    if starters and pool.capacity == 0:
        raise ValueError(f"{what}: no bundle holds a task of {cpus} CPUs")
    done: dict[int, T] = {}
    running: dict[ObjectRef[T], tuple[int, Bundle]] = {}
    waiting = list(enumerate(starters))
    given = 0
    try:
        while waiting or running or given in done:
            while waiting and (bundle := pool.acquire()) is not None:
                number, start = waiting.pop(0)
                running[start(bundle.options(cpus))] = (number, bundle)
            if given in done:
                yield done.pop(given)
                given += 1
                continue
            ready, _ = ray.wait(list(running), num_returns=1, timeout=STOP_CHECK_SECONDS)
            for ref in ready:
                number, bundle = running.pop(ref)
                pool.release(bundle)
                done[number] = ray.get(ref)  # a task's error raises now, not in its turn
                if progress is not None:
                    progress((given + len(done)) / len(starters))
            if running and stop is not None and stop():
                raise TrainingStopped(f"{what} stopped: the job was cancelled")
    finally:
        cancel(running)


def cancel(refs: Iterable[ObjectRef[Any]]) -> None:
    """Stop these tasks: cancelled, asked again until they end, and after
    ``CANCEL_WAIT_SECONDS`` their workers killed (``ray.get`` then raises
    ``TaskCancelledError``, or ``WorkerCrashedError`` for a killed one)."""
    pending = list(refs)
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while pending and time.monotonic() < deadline:
        for ref in pending:
            ray.cancel(ref)
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=CANCEL_RETRY_SECONDS)
    for ref in pending:
        ray.cancel(ref, force=True)


def stop_of(callbacks: JobCallbacks | None) -> Callable[[], bool] | None:
    """Whether the job was cancelled, if the coordinator can ask."""
    return callbacks.is_cancelled if callbacks is not None else None
