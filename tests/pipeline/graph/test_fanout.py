"""A coordinator's tasks run in its job's reservation, one per reserved CPU at a time, on a
real (local) Ray with real placement groups."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group

from domain.errors import TrainingStopped
from pipeline.graph.fanout import CANCEL_WAIT_SECONDS, Starter, cancel, fan_out, in_order
from pipeline.placement import Bundle, BundlePool, Placement

pytestmark = pytest.mark.usefixtures("ray_cluster")


@ray.remote
def _where(number: int, seconds: float) -> tuple[int, str | None, float, float]:
    """The task's number, the placement group it ran in, and when it ran."""
    start = time.monotonic()
    time.sleep(seconds)
    group = ray.get_runtime_context().get_placement_group_id()
    return number, group, start, time.monotonic()


@pytest.fixture
def reserved() -> Iterator[PlacementGroup]:
    group = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")
    ray.get(group.ready(), timeout=30)
    yield group
    remove_placement_group(group)


def starters(count: int, seconds: float) -> list[Starter[Any]]:
    def starter(number: int) -> Starter[Any]:
        return lambda options: _where.options(**options).remote(number, seconds)

    return [starter(n) for n in range(count)]


def test_tasks_run_in_the_reservation_one_per_cpu_at_a_time(reserved: PlacementGroup) -> None:
    placement = Placement((Bundle(reserved, 0, 1), Bundle(reserved, 1, 1)))
    done: list[float] = []

    results = fan_out(starters(5, 0.3), placement.workers(), "test", progress=done.append)

    assert [number for number, *_ in results] == [0, 1, 2, 3, 4]
    assert {group for _, group, _, _ in results} == {reserved.id.hex()}
    spans = [(start, end) for *_, start, end in results]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most <= 2, "never more tasks at once than reserved CPUs"
    assert done == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


def test_results_come_in_order_as_soon_as_those_before_have_ended(
    reserved: PlacementGroup,
) -> None:
    """The first task is the slowest: the others end first and wait, in Ray's object
    store, for it; each result is given once it and those before it are in."""
    placement = Placement((Bundle(reserved, 0, 1), Bundle(reserved, 1, 1)))

    def starter(number: int) -> Starter[Any]:
        seconds = 1.5 if number == 0 else 0.1
        return lambda options: _where.options(**options).remote(number, seconds)

    given = []
    for number, _, _, ended in in_order([starter(n) for n in range(4)], placement.workers(), "t"):
        given.append((number, ended, time.monotonic()))
    assert [number for number, *_ in given] == [0, 1, 2, 3]
    first_given = given[0][2]
    assert all(ended < first_given for _, ended, _ in given[1:]), "ended while 0 ran"


def test_leaving_early_cancels_the_running_tasks() -> None:
    def starter(number: int) -> Starter[Any]:
        seconds = 0.1 if number == 0 else 60
        return lambda options: _where.options(**options).remote(number, seconds)

    results = in_order([starter(n) for n in range(3)], Placement.anywhere(2).workers(), "t")
    assert next(results)[0] == 0
    results.close()  # the caller stops after the first: tasks 1 and 2 are cancelled
    both = ray.remote(num_cpus=2)(lambda: "the cluster's 2 CPUs are free")
    assert ray.get(both.remote(), timeout=CANCEL_WAIT_SECONDS + 10)


def test_a_cancel_stops_the_rest_and_the_running_ones() -> None:
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return True

    with pytest.raises(TrainingStopped, match="test stopped"):
        fan_out(starters(4, 30), Placement.anywhere(1).workers(), "test", stop)
    assert asked


@ray.remote(max_retries=0)
def _deaf(seconds: float) -> None:
    """A task no cancel interrupts (as one whose cancel Ray lost)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(0.1)


@ray.remote
def _wait(seconds: float) -> None:
    time.sleep(seconds)


def test_cancel_stops_a_task_and_kills_one_that_does_not_listen() -> None:
    polite, deaf = _wait.remote(60), _deaf.remote(60)
    time.sleep(1)  # both running
    started = time.monotonic()
    cancel([polite, deaf])
    assert time.monotonic() - started < CANCEL_WAIT_SECONDS + 2
    # Both are over (the deaf one would otherwise run for a minute), neither with a result.
    over, _ = ray.wait([polite, deaf], num_returns=2, timeout=10)
    assert over == [polite, deaf]
    for ref in over:
        with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
            ray.get(ref)


def test_a_bundle_pool_packs_tasks_and_counts_them_while_bundles_come_and_go() -> None:
    a, b = Bundle(None, 0, 2), Bundle(None, 1, 1)
    pool = BundlePool([a, b])
    assert pool.capacity == 3
    assert pool.acquire() == b, "the fullest bundle first"
    assert pool.acquire() == a
    pool.update([a])  # b was taken back
    assert pool.capacity == 2
    assert not pool.granted(b)
    assert pool.acquire() == a
    assert pool.acquire() is None
    pool.update([a, b])  # b is back (an answer was missing, say) with its task still on it
    assert pool.acquire() is None, "b's CPU is still its task's"
    pool.release(b)
    assert pool.acquire() == b
