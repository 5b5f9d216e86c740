"""Ray's state API on the cluster this process is connected to.

Without an address the state API finds a cluster the way ``ray.init()`` does: through
Ray's ``ray_current_cluster`` file, which can name another cluster or a dead one. The
suite asks its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.util.state import list_tasks
from ray.util.state.common import TaskState


def tasks(*filters: tuple[str, str, Any], detail: bool = False) -> list[TaskState]:
    """The connected cluster's tasks that pass every ``(key, predicate, value)`` filter."""
    address = ray.get_runtime_context().gcs_address
    found: list[TaskState] = list_tasks(
        address=address, filters=list(filters), limit=10_000, detail=detail
    )
    return found


def idle_cpus() -> tuple[float, float]:
    """The cluster's CPUs no task or actor holds, and all of them."""
    free = ray.available_resources().get("CPU", 0.0)  # type: ignore[no-untyped-call]
    total = ray.cluster_resources().get("CPU", 0.0)  # type: ignore[no-untyped-call]
    return float(free), float(total)


async def task_names(matches: Callable[[str], bool], count: int, timeout: float = 10) -> set[str]:
    """The names of the tasks ``matches`` accepts, once there are ``count`` of them or the
    timeout has passed (the state API learns of tasks in batches, a little late)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(tasks, ("name", "!=", ""))
        names = {t.name for t in found if matches(t.name)}
        if len(names) >= count or time.monotonic() > deadline:
            return names
        await asyncio.sleep(0.2)


async def task_states(name: str, until: set[str], timeout: float = 10) -> list[str]:
    """The states of the tasks called ``name``, once all are in ``until`` or the timeout has
    passed."""
    deadline = time.monotonic() + timeout
    while True:
        states = [t.state for t in await asyncio.to_thread(tasks, ("name", "=", name))]
        if (states and set(states) <= until) or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.2)
