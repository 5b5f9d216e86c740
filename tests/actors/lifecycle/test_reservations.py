"""Reservations as Ray places them: a job runs only once its CPUs are placed and goes back
to the queue when they are not placed in time; a batch forecast reserves CPUs ahead of
queued jobs, booked once while it waits; a group whose node left is booked where Ray
placed it again."""

from __future__ import annotations

import asyncio
import time

import pytest

import actors.lifecycle
from actors.admitting import PLACEMENTS
from actors.cluster import ClusterShape
from db.database import Database
from db.jobs import JobStore
from db.records import JobRecord
from domain.errors import PipelineError
from domain.jobs import JobStatus
from pipeline.resources import Demand
from tests.actors.lifecycle.harness import MakeHarness


async def test_a_job_turns_running_only_once_its_reservation_is_placed(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=2)
    h.groups.held = True  # Ray has not placed it yet
    job_id = await h.queue_job(demand=Demand((2,)))

    await h.lifecycle.start_queued()

    assert await h.status(job_id) is JobStatus.QUEUED
    assert job_id not in h.launcher.runs
    assert h.ledger.held(job_id) == 2, "its CPUs are booked while Ray places them"
    status = h.queue_status(job_id)
    assert status is not None
    assert status.waiting_reason == "starting: Ray is placing its 2 CPUs"

    [group] = h.groups.made
    group.placed.set()
    deadline = time.monotonic() + 5
    while job_id not in h.launcher.runs:
        assert time.monotonic() < deadline, "the placed job never launched"
        await asyncio.sleep(0.01)
    assert await h.status(job_id) is JobStatus.RUNNING
    assert h.queue_status(job_id) is None


async def test_a_reservation_not_placed_in_time_goes_back_and_its_job_to_the_queue(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=1, placement_timeout=0.1)
    h.groups.held = True  # e.g. CPUs taken by work outside the service
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()

    job = await h.ended(job_id)

    assert job.status is JobStatus.QUEUED
    assert job_id in h.queue
    assert h.groups.live() == []
    assert h.ledger.reserved == 0
    deadline = time.monotonic() + 5
    while not any("back in the queue" in log.message for log in await h.store.tail_logs(job_id, 5)):
        assert time.monotonic() < deadline, "no log line says why the job waits again"
        await asyncio.sleep(0.01)
    h.groups.held = False
    await h.lifecycle.start_queued()
    assert await h.status(job_id) is JobStatus.RUNNING


async def test_a_batch_forecast_reserves_its_cpus_ahead_of_queued_jobs(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=2)
    job_id = await h.queue_job(demand=Demand((2,)))
    reserving = asyncio.create_task(h.lifecycle.reserve("forecast:f1", Demand((1, 1))))
    await asyncio.sleep(0)

    await h.lifecycle.start_queued()
    placement = await asyncio.wait_for(reserving, 5)

    assert len(placement.workers()) == 2
    assert await h.status(job_id) is JobStatus.QUEUED
    assert h.ledger.held("forecast:f1") == 2
    h.lifecycle.release("forecast:f1")
    assert h.ledger.reserved == 0
    await h.lifecycle.start_queued()
    assert await h.status(job_id) is JobStatus.RUNNING


async def test_a_forecast_waiting_for_ray_is_booked_once_however_many_passes_run(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=2)
    h.groups.held = True
    reserving = asyncio.create_task(h.lifecycle.reserve("forecast:f2", Demand((1,))))
    await asyncio.sleep(0)
    for _ in range(3):
        await h.lifecycle.start_queued()
    assert h.ledger.held("forecast:f2") == 1
    assert len(h.groups.made) == 1

    h.groups.made[0].placed.set()
    placement = await asyncio.wait_for(reserving, 5)
    assert len(placement.workers()) == 1


async def test_a_forecast_ray_does_not_place_in_time_waits_again_then_fails(
    harness_of: MakeHarness,
) -> None:
    """A slow placement (a node coming up) had failed the forecast at once with
    ``TimeoutError: ``; it now waits for CPUs again, and fails saying why after
    ``PLACEMENTS`` tries."""
    h = await harness_of(capacity=2, placement_timeout=0.05)
    h.groups.held = True
    reserving = asyncio.create_task(h.lifecycle.reserve("forecast:f3", Demand((1,))))
    await asyncio.sleep(0)
    await h.lifecycle.start_queued()
    await asyncio.sleep(0.2)  # the first placement timed out: released, waiting again
    assert not reserving.done()
    assert h.ledger.held("forecast:f3") == 0
    assert h.groups.live() == []
    h.groups.held = False
    await h.lifecycle.start_queued()
    placement = await asyncio.wait_for(reserving, 5)
    assert len(placement.workers()) == 1
    h.lifecycle.release("forecast:f3")

    h.groups.held = True
    failing = asyncio.create_task(h.lifecycle.reserve("forecast:f4", Demand((1,))))
    for _ in range(PLACEMENTS):
        await asyncio.sleep(0)
        await h.lifecycle.start_queued()
        await asyncio.sleep(0.2)
    with pytest.raises(
        TimeoutError, match=f"did not place its 1 CPU.s. within 0.05 s, {PLACEMENTS}"
    ):
        await asyncio.wait_for(failing, 5)
    assert h.ledger.reserved == 0
    assert h.groups.live() == []


async def test_a_forecast_asks_for_no_more_cpus_than_the_cluster_can_have(
    harness_of: MakeHarness,
) -> None:
    """Eight CPUs configured for forecasts on a cluster of at most three: it had waited
    for ever."""
    h = await harness_of(capacity=2, max_cpus=3)
    reserving = asyncio.create_task(h.lifecycle.reserve("forecast:f5", Demand((1,) * 8)))
    await asyncio.sleep(0)
    await h.lifecycle.start_queued()
    assert not reserving.done()  # three CPUs, of which two are alive
    h.ledger.update(ClusterShape({"node-0": 2, "w1": 1}, max_cpus=3))
    await h.lifecycle.start_queued()
    placement = await asyncio.wait_for(reserving, 5)
    assert len(placement.workers()) == 3


async def test_a_group_on_a_node_that_left_is_booked_where_ray_placed_it_again(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(cluster=ClusterShape({"n0": 2, "n1": 2}))
    job_id = await h.queue_job(demand=Demand((2,)))
    await h.lifecycle.start_queued()
    [group] = h.ledger.groups_of(job_id)
    [gone] = group.nodes
    [kept] = {"n0", "n1"} - {gone}

    assert not h.reservations.displaced()
    h.groups.moved[group.name] = ("",)  # Ray has yet to place it again
    h.ledger.update(ClusterShape({kept: 2}))
    h.reservations.relocate()
    assert h.reservations.displaced(), "asked again until Ray places it"

    h.groups.moved[group.name] = (kept,)
    h.reservations.relocate()
    assert h.ledger.free() == {kept: 0}, "its CPUs are held where it is now"
    assert not h.reservations.displaced()


class ReadGate(JobStore):
    """A job store whose job reads wait, once read, for the test to open the gate."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def get_job(self, job_id: str) -> JobRecord:
        job = await super().get_job(job_id)
        self.reached.set()
        await self.opened.wait()
        return job


async def test_a_job_cancelled_while_it_goes_back_to_the_queue_stays_out_of_it(
    harness_of: MakeHarness, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    gate = ReadGate(database)
    h = await harness_of(capacity=1, placement_timeout=0.1, store=gate)
    h.groups.held = True
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    await asyncio.wait_for(gate.reached.wait(), 5)  # the requeue has read it queued

    await h.lifecycle.cancel(job_id)
    gate.opened.set()
    job = await h.ended(job_id)

    assert job.status is JobStatus.CANCELLED
    assert job_id not in h.queue
    assert h.queue_status(job_id) is None
    assert h.ledger.reserved == 0


async def test_a_group_ray_failed_to_remove_is_removed_later_and_its_job_ends_whole(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=4)
    job_id = await h.queue_job(demand=Demand((1,), slots=3))
    await h.lifecycle.start_queued()
    assert len(h.groups.live()) == 4, "the stage bundle and three trial slots"

    h.groups.failing_removals = 1
    h.launcher.runs[job_id].fail(PipelineError("the search failed"))
    job = await h.ended(job_id)

    assert job.status is JobStatus.FAILED
    assert h.ledger.held(job_id) == 0
    assert len(h.groups.live()) == 1, "the other three removed though one removal failed"
    assert h.reservations.unremoved == 1
    assert h.reservations.retry_removals() == 0
    assert h.groups.live() == []
