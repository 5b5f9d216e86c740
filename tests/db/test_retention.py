"""Retention on both backends, with the clock passed in: it deletes exactly what the policy
says, keeps experiments and metrics, never touches a job whose model is registered, and
deletes only finished batch forecasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from db.experiments import ExperimentCatalog
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.models import BatchForecast, TrainingJob
from db.records import ForecastFilters, JobFilters, MetricPoint, NewForecast, NewLog
from db.retention import RetentionPolicy, purge
from domain.errors import ForecastNotFound, JobNotFound
from domain.events import JobEvent
from domain.jobs import JobStatus, LogLevel
from tests.db.factories import append_logs, new_job, new_model
from tests.db.test_registry import register

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

    experiment_id = await ExperimentCatalog(store.database).create_experiment(
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


async def test_finished_forecasts_go_after_their_period(store: JobStore) -> None:
    model = new_model()
    await register(store, model)
    forecasts = ForecastStore(store.database)

    async def forecast(finish: str | None, days_ago: float) -> str:
        created = await forecasts.create(NewForecast("tenant-a", model.model_id, "fs", 24), NOW)
        forecast_id = created.forecast_id
        at = NOW - timedelta(days=days_ago)
        if finish is not None:
            assert await forecasts.start(forecast_id, at)
        if finish == "complete":
            assert await forecasts.complete(forecast_id, 24, "/x/forecast.parquet", at)
        elif finish == "fail":
            assert await forecasts.fail(forecast_id, "broken", at)
        return forecast_id

    old_completed = await forecast("complete", 31)
    old_failed = await forecast("fail", 31)
    young = await forecast("complete", 29)
    running = await forecast("run", 400)
    queued = await forecast(None, 400)

    report = await purge(store.database, RetentionPolicy(), NOW)

    assert sorted(f.forecast_id for f in report.forecasts) == sorted([old_completed, old_failed])
    assert {f.tenant_id for f in report.forecasts} == {"tenant-a"}
    for kept in (young, running, queued):
        assert (await forecasts.get(kept)).forecast_id == kept
    for gone in (old_completed, old_failed):
        with pytest.raises(ForecastNotFound):
            await forecasts.get(gone)
    assert (await purge(store.database, RetentionPolicy(), NOW)).forecasts == ()


async def test_more_expired_forecasts_than_a_statement_can_name_are_purged(
    store: JobStore,
) -> None:
    """Over PostgreSQL's 32,767 bound parameters: a purge naming them all in one
    statement failed, and every purge after it."""
    model = new_model()
    await register(store, model)
    old = NOW - timedelta(days=31)
    rows = [
        {
            "forecast_id": f"{n:08d}-0000-0000-0000-000000000000",
            "tenant_id": "tenant-a",
            "model_id": model.model_id,
            "feature_set": "fs",
            "horizon": 24,
            "status": "completed",
            "created_at": old,
            "finished_at": old,
        }
        for n in range(33_000)
    ]
    async with store.database.transaction() as session:
        await session.execute(insert(BatchForecast), rows)

    report = await purge(store.database, RetentionPolicy(), NOW)

    assert len(report.forecasts) == 33_000
    assert (await ForecastStore(store.database).search(ForecastFilters(), 1, 1)).total == 0
