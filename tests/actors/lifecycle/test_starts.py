"""Which queued jobs start: within the free CPUs, which grow with the cluster, and the
tenants' running limits, each waiting job saying why; an urgent job takes a search's trial
slots back until it ends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy.exc

from actors.admission import TenantLimits
from actors.autoscaler import Wanted
from actors.cluster import ClusterShape
from db.database import Database
from db.jobs import JobStore
from db.records import JobRecord
from domain.errors import PipelineError
from domain.events import JobEvent
from domain.jobs import JobPriority, JobStatus
from pipeline.resources import Demand
from tests.actors.lifecycle.harness import MakeHarness


async def test_a_tenant_at_its_running_limit_waits_while_others_start(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=3, limits={"tenant-a": TenantLimits(max_running=1)})
    a1, a2 = await h.queue_job("tenant-a"), await h.queue_job("tenant-a")
    b1 = await h.queue_job("tenant-b")

    await h.lifecycle.start_queued()

    assert set(h.launcher.runs) == {a1, b1}
    assert await h.status(a2) is JobStatus.QUEUED
    status = h.queue_status(a2)
    assert status is not None
    assert status.waiting_reason == "tenant limit of 1 running jobs reached"
    h.launcher.runs[a1].fail(PipelineError("failed"))
    await h.ended(a1)
    await h.lifecycle.start_queued()
    assert await h.status(a2) is JobStatus.RUNNING


async def test_no_more_jobs_run_than_the_capacity(harness_of: MakeHarness) -> None:
    h = await harness_of(capacity=2)
    jobs = [await h.queue_job(tenant) for tenant in ("tenant-a", "tenant-b", "tenant-c")]

    await h.lifecycle.start_queued()

    # the two start together, so their launches come in either order
    assert set(h.launcher.runs) == set(jobs[:2])
    assert [await h.status(j) for j in jobs] == [JobStatus.RUNNING] * 2 + [JobStatus.QUEUED]
    status = h.queue_status(jobs[2])
    assert status is not None
    assert status.waiting_reason == "waiting for 1 CPU (0 of 2 free)"
    await h.lifecycle.start_queued()  # nothing changed: nothing more starts
    assert set(h.launcher.runs) == set(jobs[:2])
    h.launcher.runs[jobs[0]].fail(PipelineError("failed"))
    await h.ended(jobs[0])
    await h.lifecycle.start_queued()
    assert list(h.launcher.runs)[2] == jobs[2]
    assert await h.status(jobs[2]) is JobStatus.RUNNING


def bundles(demand: tuple[list[Wanted], list[Wanted]]) -> tuple[list[list[int]], ...]:
    return tuple([list(wanted.bundles) for wanted in side] for side in demand)


async def test_the_demand_leaves_out_jobs_their_tenants_may_not_start(
    harness_of: MakeHarness,
) -> None:
    """A paused tenant's queued jobs, and a tenant's beyond its limit, ask the autoscaler
    for nothing: they would only keep nodes idle."""
    limits = {"paused": TenantLimits(max_running=0), "one": TenantLimits(max_running=1)}
    h = await harness_of(capacity=1, max_cpus=8, limits=limits)
    await h.queue_job("one")
    await h.lifecycle.start_queued()
    for tenant in ("paused", "paused", "one", "free", "free"):
        await h.queue_job(tenant)

    held, waiting = h.lifecycle.demand()
    assert [(w.bundles, w.counted) for w in held] == [((1,), True)]
    assert [(w.bundles, w.counted) for w in waiting] == [((1,), True)] * 2  # tenant "free"


async def test_more_jobs_start_as_the_cluster_grows_and_demand_counts_their_cpus(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=2, max_cpus=6)
    jobs = [await h.queue_job(f"tenant-{n}") for n in range(6)]

    await h.lifecycle.start_queued()
    assert set(h.launcher.runs) == set(jobs[:2])
    status = h.queue_status(jobs[2])
    assert status is not None
    assert status.waiting_reason == "waiting for 1 CPU (0 of 2 free)"
    assert bundles(h.lifecycle.demand()) == ([[1], [1]], [[1]] * 4)

    h.ledger.update(ClusterShape({"node-0": 2, "w1": 2, "w2": 2}))  # two workers joined
    await h.lifecycle.start_queued()
    assert set(h.launcher.runs) == set(jobs)
    assert bundles(h.lifecycle.demand()) == ([[1]] * 6, [])

    h.ledger.update(ClusterShape.of(2, max_cpus=6))  # and left: running jobs go on
    assert h.lifecycle.running == 6


@pytest.mark.parametrize("urgent_tenant", ["tenant-a", "tenant-b"])
async def test_an_urgent_job_takes_trial_slots_back_and_the_search_gets_them_again(
    harness_of: MakeHarness, urgent_tenant: str
) -> None:
    """A low-priority search holds the whole 4-CPU node (its stage bundle and three trial
    slots); an urgent one-CPU job takes one slot back, both jobs' logs say so (naming the
    other job only within a tenant), and the slot comes back once the urgent job has
    ended."""
    h = await harness_of(capacity=4)
    search = await h.queue_job(demand=Demand((1,), slots=3), priority=JobPriority.LOW)
    await h.lifecycle.start_queued()
    assert h.ledger.held(search) == 4
    assert len(h.lifecycle.trial_slots(search)) == 3

    urgent = await h.queue_job(urgent_tenant, priority=JobPriority.URGENT)
    own = urgent_tenant == "tenant-a"  # the search's
    await h.lifecycle.start_queued()

    assert await h.status(urgent) is JobStatus.RUNNING
    assert (h.ledger.held(search), h.ledger.held(urgent)) == (3, 1)
    assert len(h.lifecycle.trial_slots(search)) == 2
    deadline = time.monotonic() + 5
    while True:
        said = [log.message for log in await h.store.tail_logs(search, 20)]
        if any("trial slot(s) taken back for" in m for m in said):
            break
        assert time.monotonic() < deadline, said
        await asyncio.sleep(0.01)
    urgent_said = [log.message for log in await h.store.tail_logs(urgent, 20)]
    if own:
        assert any(f"taken back for urgent job {urgent}" in m for m in said), said
        assert f"starting on 1 CPU(s) taken back from job {search}" in urgent_said
    else:
        assert any("taken back for another tenant's urgent job" in m for m in said), said
        assert "starting on 1 CPU(s) taken back from another tenant's job" in urgent_said
        assert not any(urgent in m for m in said)
        assert not any(search in m for m in urgent_said)

    h.launcher.runs[urgent].fail(PipelineError("done with it"))
    await h.ended(urgent)
    await h.lifecycle.start_queued()
    deadline = time.monotonic() + 5
    while len(h.lifecycle.trial_slots(search)) < 3:
        assert time.monotonic() < deadline, "the search never got its slot back"
        await asyncio.sleep(0.01)
    assert h.ledger.held(search) == 4


@pytest.mark.parametrize("small_tenant", ["tenant-b", "tenant-c"])
async def test_a_job_held_back_for_a_larger_one_is_told_which_only_within_its_tenant(
    harness_of: MakeHarness, small_tenant: str
) -> None:
    h = await harness_of(capacity=2)
    running = await h.queue_job("tenant-a")
    await h.lifecycle.start_queued()
    assert await h.status(running) is JobStatus.RUNNING
    large = await h.queue_job("tenant-b", demand=Demand((2,)))
    small = await h.queue_job(small_tenant)
    await h.lifecycle.start_queued()

    status = h.queue_status(small)
    assert status is not None
    if small_tenant == "tenant-b":
        assert status.waiting_reason == f"its 1 CPU would delay job {large}, which waits for more"
    else:
        assert status.waiting_reason == (
            "its 1 CPU would delay another tenant's job, which waits for more"
        )


class StartFailsOnce(JobStore):
    """A store whose first START fails with an error no outage handling knows (a pool
    timeout), committing nothing."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.failed = False

    async def transition(self, job_id: str, event: JobEvent, **changes: Any) -> JobRecord:
        if event is JobEvent.START and not self.failed:
            self.failed = True
            raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")
        return await super().transition(job_id, event, **changes)


async def test_a_start_failing_with_any_error_has_the_queue_reloaded(
    harness_of: MakeHarness, database: Database
) -> None:
    h = await harness_of(capacity=1, store=StartFailsOnce(database))
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    job = await h.ended(job_id)

    assert job.status is JobStatus.QUEUED
    assert h.ledger.held(job_id) == 0
    assert h.lifecycle.take_lost(), "the dispatch loop reloads the queue, finding the job"
