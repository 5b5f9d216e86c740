"""Retention on both backends, with the clock passed in: it deletes exactly what the policy
says, keeps experiments and metrics, and never touches a job whose model is registered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.models import TrainingJob
from db.records import JobFilters, MetricPoint, NewLog
from db.retention import RetentionPolicy, purge
from domain.errors import JobNotFound
from domain.events import JobEvent
from domain.jobs import JobStatus, LogLevel
from tests.db.factories import append_logs, new_job, new_model

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def finished_job(
    store: JobStore, event: JobEvent, days_ago: float, with_model: str | None = None
) -> str:
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    model = new_model(with_model) if with_model else None
    await store.transition(job.job_id, event, model=model)
    async with store.database.transaction() as session:
        await session.execute(
            update(TrainingJob)
            .where(TrainingJob.job_id == job.job_id)
            .values(completed_at=NOW - timedelta(days=days_ago))
        )
    return job.job_id


async def test_purges_exactly_what_the_policy_says(store: JobStore) -> None:
    old_completed = await finished_job(store, JobEvent.COMPLETE, 91)
    young_completed = await finished_job(store, JobEvent.COMPLETE, 89)
    old_failed = await finished_job(store, JobEvent.FAIL, 31)
    young_failed = await finished_job(store, JobEvent.FAIL, 29)
    old_cancelled = await finished_job(store, JobEvent.CANCEL, 31)
    registered = await finished_job(store, JobEvent.COMPLETE, 400, with_model="20260101.000001")
    running = await store.create_job(new_job())
    await store.transition(running.job_id, JobEvent.START)

    experiment_id = await store.create_experiment(
        old_failed, "run", {"lr": 0.1}, [MetricPoint("validation_l1", 1.0, 1)]
    )
    await append_logs(
        store.database,
        [
            NewLog(young_completed, LogLevel.INFO, "eight days old", NOW - timedelta(days=8)),
            NewLog(young_completed, LogLevel.INFO, "six days old", NOW - timedelta(days=6)),
        ],
    )
    await append_logs(
        store.database,
        [NewLog(registered, LogLevel.INFO, "ten days old", NOW - timedelta(days=10))],
    )

    report = await purge(store.database, RetentionPolicy(), NOW)

    assert report.jobs == 3
    remaining = {j.job_id for j in (await store.list_jobs(JobFilters(), 1, 100)).items}
    assert remaining == {young_completed, young_failed, registered, running.job_id}
    for gone in (old_completed, old_failed, old_cancelled):
        try:
            await store.get_job(gone)
        except JobNotFound:
            continue
        raise AssertionError(f"{gone} survived")
    messages = [line.message for line in await store.tail_logs(young_completed, 100)]
    assert "six days old" in messages
    assert "eight days old" not in messages
    assert "ten days old" not in [line.message for line in await store.tail_logs(registered, 100)]
    assert (await store.get_job(registered)).status is JobStatus.COMPLETED
    kept = await ExperimentCatalog(store.database).metric_history(experiment_id, "validation_l1")
    assert [p.value for p in kept] == [1.0], "metrics outlive their job"

    again = await purge(store.database, RetentionPolicy(), NOW)
    assert (again.jobs, again.logs) == (0, 0)


async def test_periods_are_settings(store: JobStore) -> None:
    job_id = await finished_job(store, JobEvent.COMPLETE, 10)
    policy = RetentionPolicy(completed_jobs_days=9.5)
    assert (await purge(store.database, policy, NOW)).jobs == 1
    assert (await store.list_jobs(JobFilters(), 1, 10)).total == 0, job_id
