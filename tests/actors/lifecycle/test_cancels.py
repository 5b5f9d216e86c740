"""A cancel ends its job whenever it comes: while the job starts or is placed (it never
runs), while it runs (the run is killed if it does not stop within the grace period), and
for all of a tenant's queued jobs at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from ray.exceptions import TaskCancelledError

import actors.lifecycle
from db.database import Database
from domain.jobs import JobStatus
from tests.actors.lifecycle.harness import MakeHarness, StartGate


@pytest.mark.parametrize("after_commit", [False, True], ids=["before-commit", "after-commit"])
async def test_a_job_cancelled_while_it_starts_is_never_launched(
    harness_of: MakeHarness, database: Database, after_commit: bool
) -> None:
    gate = StartGate(database, after_commit=after_commit)
    h = await harness_of(capacity=1, store=gate)
    first, second = await h.queue_job(), await h.queue_job()

    starting = asyncio.create_task(h.lifecycle.start_queued())
    await gate.reached.wait()
    cancelled = await h.lifecycle.cancel(first)
    gate.opened.set()
    await starting

    assert cancelled.status is JobStatus.CANCELLED
    assert await h.status(first) is JobStatus.CANCELLED
    assert first not in h.launcher.runs
    assert not h.lifecycle.tracks(first)
    assert await h.status(second) is JobStatus.RUNNING  # the slot was freed for it
    assert list(h.launcher.runs) == [second]


async def test_a_cancelled_run_that_does_not_stop_is_killed_after_the_grace_period(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "CANCEL_GRACE_SECONDS", 0.05)
    h = await harness_of()
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    run = h.launcher.runs[job_id]

    await h.lifecycle.cancel(job_id)
    assert run.cancels == [False]
    assert await h.status(job_id) is JobStatus.CANCELLED
    deadline = time.monotonic() + 5
    while run.cancels == [False]:
        assert time.monotonic() < deadline, "the run was never killed"
        await asyncio.sleep(0.01)
    assert run.cancels == [False, True]
    assert h.lifecycle.running == 1  # its slot is held until the run stops

    run.fail(TaskCancelledError())
    job = await h.ended(job_id)
    assert job.status is JobStatus.CANCELLED
    assert job.error_message is None
    assert h.lifecycle.running == 0


async def test_a_cancelled_run_that_stops_is_not_killed(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "CANCEL_GRACE_SECONDS", 0.05)
    h = await harness_of()
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    run = h.launcher.runs[job_id]

    await h.lifecycle.cancel(job_id)
    run.fail(TaskCancelledError())
    job = await h.ended(job_id)
    await asyncio.sleep(0.1)  # past the grace period

    assert run.cancels == [False]
    assert job.status is JobStatus.CANCELLED
    assert job.error_message is None


async def test_a_job_cancelled_while_it_is_placed_never_runs_and_frees_its_cpus(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=1)
    h.groups.held = True
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()

    await h.lifecycle.cancel(job_id)
    job = await h.ended(job_id)

    assert job.status is JobStatus.CANCELLED
    assert job_id not in h.launcher.runs
    assert h.groups.live() == []
    assert h.ledger.reserved == 0


async def test_a_tenants_queued_jobs_cancelled_at_once_include_one_being_placed(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=1)
    h.groups.held = True
    placing, queued = await h.queue_job(), await h.queue_job()
    await h.lifecycle.start_queued()

    assert sorted(await h.lifecycle.cancel_queued("tenant-a")) == sorted([placing, queued])
    job = await h.ended(placing)

    assert job.status is JobStatus.CANCELLED
    assert placing not in h.launcher.runs
    assert h.groups.live() == []
