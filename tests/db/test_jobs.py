"""The job store on every backend (SQLite and the real PostgreSQL): jobs and their
transitions, and what a change writes with it in the same transaction (its log lines,
its experiments closed, its model)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.records import JobFilters, NewLog
from db.registry import ModelRegistry
from domain.errors import IllegalTransition, JobNotFound, ModelNotFound
from domain.events import JobEvent
from domain.jobs import ExperimentStatus, JobStatus, LogLevel, ModelType
from tests.db.factories import new_job, new_model


async def test_created_job_is_queued_and_readable(store: JobStore) -> None:
    job = await store.create_job(new_job(priority=2))
    assert job.status is JobStatus.QUEUED
    assert job.progress == 0.0
    assert job.attempts == 0
    assert job.created_at.tzinfo is not None
    fetched = await store.get_job(job.job_id)
    assert fetched == job


async def test_unknown_job_raises_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.get_job("no-such-job")
    with pytest.raises(JobNotFound):
        await store.transition("no-such-job", JobEvent.START)
    with pytest.raises(JobNotFound):
        await store.tail_logs("no-such-job", 10)


async def test_list_filters_and_paginates(store: JobStore) -> None:
    for i in range(5):
        await store.create_job(new_job(tenant_id="t1", model_name=f"m{i % 2}"))
    await store.create_job(new_job(tenant_id="t2", model_type=ModelType.ANOMALY))
    page = await store.list_jobs(JobFilters(tenant_id="t1"), page=1, page_size=2)
    assert page.total == 5
    assert len(page.items) == 2
    third = await store.list_jobs(JobFilters(tenant_id="t1"), page=3, page_size=2)
    assert len(third.items) == 1
    seen = {
        j.job_id
        for p in (1, 2, 3)
        for j in (await store.list_jobs(JobFilters(tenant_id="t1"), p, 2)).items
    }
    assert len(seen) == 5
    assert (await store.list_jobs(JobFilters(model_name="m0"), 1, 10)).total == 3
    anomaly = await store.list_jobs(JobFilters(model_type=ModelType.ANOMALY), 1, 10)
    assert [j.tenant_id for j in anomaly.items] == ["t2"]
    assert (await store.list_jobs(JobFilters(status=JobStatus.RUNNING), 1, 10)).total == 0


async def test_jobs_in_status_orders_by_priority_then_age(store: JobStore) -> None:
    low = await store.create_job(new_job(priority=-1))
    normal = await store.create_job(new_job(priority=0))
    urgent = await store.create_job(new_job(priority=2))
    normal2 = await store.create_job(new_job(priority=0))
    queued = await store.jobs_in_status(JobStatus.QUEUED)
    assert [j.job_id for j in queued] == [urgent.job_id, normal.job_id, normal2.job_id, low.job_id]


async def test_transitions_stamp_times_and_attempts(store: JobStore) -> None:
    job = await store.create_job(new_job())
    running = await store.transition(job.job_id, JobEvent.START)
    assert running.status is JobStatus.RUNNING
    assert running.attempts == 1
    assert running.started_at is not None
    requeued = await store.transition(job.job_id, JobEvent.REQUEUE)
    assert requeued.status is JobStatus.QUEUED
    assert requeued.started_at is None
    again = await store.transition(job.job_id, JobEvent.START)
    assert again.attempts == 2
    failed = await store.transition(job.job_id, JobEvent.FAIL, error_message="boom")
    assert failed.status is JobStatus.FAILED
    assert failed.error_message == "boom"
    assert failed.completed_at is not None


async def test_illegal_transition_changes_nothing(store: JobStore) -> None:
    job = await store.create_job(new_job())
    with pytest.raises(IllegalTransition):
        await store.transition(job.job_id, JobEvent.COMPLETE)
    assert (await store.get_job(job.job_id)).status is JobStatus.QUEUED
    await store.transition(job.job_id, JobEvent.CANCEL)
    with pytest.raises(IllegalTransition):
        await store.transition(job.job_id, JobEvent.CANCEL)


async def test_complete_registers_model_and_closes_experiment(store: JobStore) -> None:
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    experiment_id = await ExperimentCatalog(store.database).create_experiment(
        job.job_id, "train", {"num_leaves": 31, "lr": 0.1}
    )
    model = new_model()
    done = await store.transition(job.job_id, JobEvent.COMPLETE, metrics={"mae": 1.5}, model=model)
    assert done.status is JobStatus.COMPLETED
    assert done.progress == 1.0
    assert done.model_id == model.model_id == "tenant-a:load_forecast:20260101.000000"
    assert done.metrics == {"mae": 1.5}
    record = await ModelRegistry(store.database).get(model.model_id)
    assert record.job_id == job.job_id
    assert record.experiment_id == experiment_id
    assert record.features == ["hour", "lag_24"]
    [experiment] = await ExperimentCatalog(store.database).of_job(job.job_id)
    assert experiment.status is ExperimentStatus.COMPLETED
    assert experiment.model_id == model.model_id
    assert experiment.params == {"lr": 0.1, "num_leaves": 31}
    models = await ModelRegistry(store.database).of_job(job.job_id)
    assert [m.model_id for m in models] == [model.model_id]


async def test_failed_registration_rolls_back_completion(store: JobStore) -> None:
    first = await store.create_job(new_job())
    second = await store.create_job(new_job())
    for job in (first, second):
        await store.transition(job.job_id, JobEvent.START)
    await store.transition(first.job_id, JobEvent.COMPLETE, model=new_model("20260101.000001"))
    with pytest.raises(IntegrityError):
        await store.transition(second.job_id, JobEvent.COMPLETE, model=new_model("20260101.000001"))
    assert (await store.get_job(second.job_id)).status is JobStatus.RUNNING


async def test_model_only_with_completion(store: JobStore) -> None:
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    with pytest.raises(ValueError, match="only when its job completes"):
        await store.transition(job.job_id, JobEvent.FAIL, model=new_model())
    with pytest.raises(ModelNotFound):
        await ModelRegistry(store.database).get(new_model().model_id)


async def test_progress_only_moves_running_jobs(store: JobStore) -> None:
    job = await store.create_job(new_job())
    assert not await store.update_progress(job.job_id, 0.2, "load_features")
    await store.transition(job.job_id, JobEvent.START)
    assert await store.update_progress(job.job_id, 0.4, "preprocess", {"rows": 10})
    updated = await store.get_job(job.job_id)
    assert (updated.progress, updated.stage, updated.metrics) == (0.4, "preprocess", {"rows": 10})


async def test_progress_outside_unit_interval_is_rejected(store: JobStore) -> None:
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    with pytest.raises(IntegrityError):
        await store.update_progress(job.job_id, 1.5, "train")


async def test_count_by_status_and_active_view(store: JobStore) -> None:
    a = await store.create_job(new_job())
    await store.create_job(new_job())
    await store.transition(a.job_id, JobEvent.START)
    counts = await store.count_by_status()
    assert counts[JobStatus.RUNNING] == 1
    assert counts[JobStatus.QUEUED] == 1
    assert counts[JobStatus.COMPLETED] == 0
    async with store.database.engine.connect() as conn:
        active = (
            await conn.execute(text("SELECT COUNT(*) FROM active_training_jobs"))
        ).scalar_one()
    assert active == 2


async def test_typical_duration_averages_the_tenants_completed_jobs(store: JobStore) -> None:
    assert await store.typical_duration("tenant-a", "forecast_basic") is None
    for _ in range(2):
        job = await store.create_job(new_job())
        await store.transition(job.job_id, JobEvent.START)
        await store.transition(job.job_id, JobEvent.COMPLETE)
    duration = await store.typical_duration("tenant-a", "forecast_basic")
    assert duration is not None
    assert 0 <= duration < 5
    assert await store.typical_duration("tenant-a", "other_set") is None
    assert await store.typical_duration("tenant-b", "forecast_basic") is None, "not its jobs"


async def test_transition_writes_its_log_lines_atomically(store: JobStore) -> None:
    job = await store.create_job(new_job())
    line = NewLog(job.job_id, LogLevel.INFO, "started", datetime.now(UTC), stage="orchestrator")
    await store.transition(job.job_id, JobEvent.START, logs=[line])
    with pytest.raises(IllegalTransition):
        await store.transition(job.job_id, JobEvent.START, logs=[line])
    assert [entry.message for entry in await store.tail_logs(job.job_id, 10)] == ["started"]


async def test_create_job_and_progress_carry_their_log_lines(store: JobStore) -> None:
    draft = new_job()
    now = datetime.now(UTC)
    job = await store.create_job(draft, logs=[NewLog(draft.job_id, LogLevel.INFO, "queued", now)])
    assert job.job_id == draft.job_id
    await store.transition(job.job_id, JobEvent.START)
    line = NewLog(job.job_id, LogLevel.INFO, "loaded", now, stage="load_features")
    assert await store.update_progress(job.job_id, 0.2, "load_features", logs=[line])
    await store.transition(job.job_id, JobEvent.CANCEL)
    late = NewLog(job.job_id, LogLevel.INFO, "late line", now, stage="train")
    assert not await store.update_progress(job.job_id, 0.7, "train", logs=[late])
    assert (await store.get_job(job.job_id)).progress == 0.2
    messages = [entry.message for entry in await store.tail_logs(job.job_id, 10)]
    assert messages == ["queued", "loaded", "late line"]


async def test_racing_transitions_never_lose_an_update(store: JobStore) -> None:
    """START and CANCEL on a queued job at the same moment: whatever the order, a CANCEL that
    succeeded is the final word (SQLite has no row locks, so the ORM checks the status it
    read when it writes)."""
    jobs = [await store.create_job(new_job()) for _ in range(20)]
    for job in jobs:
        start, cancel = await asyncio.gather(
            store.transition(job.job_id, JobEvent.START),
            store.transition(job.job_id, JobEvent.CANCEL),
            return_exceptions=True,
        )
        assert not isinstance(cancel, BaseException), cancel
        assert not isinstance(start, BaseException) or isinstance(start, IllegalTransition)
        assert (await store.get_job(job.job_id)).status is JobStatus.CANCELLED
