"""Retention of feature-set versions and forecast files, on both backends: what a
registered model or an unfinished job read is kept, the rest goes once the grace period
has passed; an expired forecast's file goes with its row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from actors.forecasts import ForecastRunner
from actors.housekeeping import Housekeeping
from actors.queue import JobQueue
from actors.settings import OrchestratorSettings
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.records import NewForecast
from db.registry import ModelRegistry
from domain.events import JobEvent
from pipeline.forecasting.batch import (
    ForecastOutcome,
    ForecastTask,
    forecast_directory,
    forecast_location,
)
from pipeline.placement import Placement
from pipeline.resources import Demand
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from tests.databases import BACKENDS, migrated_store
from tests.db.factories import new_job, new_model


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store(request.param, tmp_path) as store:
        yield store


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def no_forecast(
    task: ForecastTask, progress: Callable[[float], None], placement: Placement
) -> Awaitable[ForecastOutcome]:
    raise AssertionError("no forecast runs here")


async def no_reservation(holder: str, demand: Demand) -> Placement:
    raise AssertionError("no forecast runs here")


def housekeeping_of(
    store: JobStore,
    features: FeatureStore,
    tmp_path: Path,
    clock: Clock,
    queue: JobQueue | None = None,
    tracked: Callable[[str], bool] = lambda _: False,
) -> Housekeeping:
    settings = OrchestratorSettings()
    forecasts = ForecastRunner(
        ForecastStore(store.database),
        ModelRegistry(store.database),
        PipelineSettings(data_dir=tmp_path),
        max_attempts=settings.max_attempts,
        outage_seconds=settings.database_outage_seconds,
        clock=clock,
        launch=no_forecast,
        progress_for=lambda forecast_id: lambda progress: None,
        reserve=no_reservation,
        release=lambda holder: None,
        cpus=1,
    )
    return Housekeeping(
        store,
        JobQueue() if queue is None else queue,
        settings,
        features,
        clock=clock,
        tracked=tracked,
        forecasts=forecasts,
        studies_root=PipelineSettings(data_dir=tmp_path).studies_root,
    )


async def test_reloading_the_queue_skips_a_job_being_started(
    store: JobStore, tmp_path: Path
) -> None:
    """After a long database outage the queue is reloaded from the rows that say queued;
    a job the orchestrator is already placing says so too, and must not be queued again."""
    config = {"feature_set": "forecast_basic", "target_variable": "load_kw"}
    waiting = await store.create_job(new_job(config=config))
    starting = await store.create_job(new_job(config=config))
    queue = JobQueue()
    features = FeatureStore(Location(str(tmp_path / "features")))
    housekeeping = housekeeping_of(
        store, features, tmp_path, Clock(datetime.now(UTC)), queue, {starting.job_id}.__contains__
    )
    await housekeeping.load_queue()
    assert waiting.job_id in queue
    assert starting.job_id not in queue
    assert len(queue) == 1


async def test_retention_keeps_the_versions_models_and_running_jobs_read(
    store: JobStore, tmp_path: Path
) -> None:
    features = FeatureStore(Location(str(tmp_path / "features")))
    versions = [
        features.put(
            "s",
            load_series(seed=1, hours=24 + i),
            timestamp_column="timestamp",
            target_column="load_kw",
        ).pinned_version
        for i in range(5)
    ]
    trained = await store.create_job(new_job())
    await store.transition(trained.job_id, JobEvent.START)
    await store.update_progress(
        trained.job_id, 0.2, "load_features", feature_set_version=versions[0]
    )
    model = replace(new_model(), feature_set_version=versions[0])
    await store.transition(trained.job_id, JobEvent.COMPLETE, model=model)
    running = await store.create_job(new_job())
    await store.transition(running.job_id, JobEvent.START)
    await store.update_progress(
        running.job_id, 0.2, "load_features", feature_set_version=versions[2]
    )
    failed = await store.create_job(new_job())
    await store.transition(failed.job_id, JobEvent.START)
    await store.update_progress(
        failed.job_id, 0.2, "load_features", feature_set_version=versions[3]
    )
    await store.transition(failed.job_id, JobEvent.FAIL)

    clock = Clock(datetime.now(UTC))
    housekeeping = housekeeping_of(store, features, tmp_path, clock)
    assert (await housekeeping.purge()).feature_versions == ()  # all within the grace hour
    clock.now += timedelta(hours=2)
    report = await housekeeping.purge()

    assert sorted(r.rsplit("@", 1)[1] for r in report.feature_versions) == [
        versions[1],
        versions[3],
    ]
    kept = [v.pinned_version for v in features.versions("s")]
    assert kept == [versions[0], versions[2], versions[4]]
    assert (await store.get_job(trained.job_id)).feature_set_version == versions[0]


async def test_retention_deletes_an_expired_forecasts_file_with_its_row(
    store: JobStore, tmp_path: Path
) -> None:
    model = new_model()
    job = await store.create_job(new_job(tenant_id=model.tenant_id, model_name=model.model_name))
    await store.transition(job.job_id, JobEvent.START)
    await store.transition(job.job_id, JobEvent.COMPLETE, model=model)
    forecasts = ForecastStore(store.database)
    clock = Clock(datetime.now(UTC))
    forecast = await forecasts.create(
        NewForecast(model.tenant_id, model.model_id, "s", 24), clock()
    )
    root = PipelineSettings(data_dir=tmp_path).artifacts_root
    location = forecast_location(root, model.tenant_id, forecast.forecast_id)
    location.write_parquet(pa.table({"predicted": [1.0]}))
    assert await forecasts.start(forecast.forecast_id, clock())
    assert await forecasts.complete(forecast.forecast_id, 1, str(location), clock())
    housekeeping = housekeeping_of(store, FeatureStore(root / "features"), tmp_path, clock)

    assert (await housekeeping.purge()).forecasts == ()  # a day old
    assert location.is_file()
    clock.now += timedelta(days=31)
    report = await housekeeping.purge()

    assert [f.forecast_id for f in report.forecasts] == [forecast.forecast_id]
    assert not location.is_file()
    assert not forecast_directory(root, model.tenant_id, forecast.forecast_id).is_dir()


async def test_retention_deletes_a_purged_search_jobs_study_journal(
    store: JobStore, tmp_path: Path
) -> None:
    failed = await store.create_job(new_job())
    await store.transition(failed.job_id, JobEvent.START)
    await store.transition(failed.job_id, JobEvent.FAIL, error_message="a trial's data failed")
    studies = PipelineSettings(data_dir=tmp_path).studies_root
    studies.mkdir(parents=True)
    journal = studies / f"{failed.job_id}.journal"
    journal.write_text("{}")
    other = studies / "another-job.journal"
    other.write_text("{}")
    clock = Clock(datetime.now(UTC))
    features = FeatureStore(Location(str(tmp_path / "features")))
    housekeeping = housekeeping_of(store, features, tmp_path, clock)

    assert (await housekeeping.purge()).job_ids == ()
    clock.now += timedelta(days=31)
    assert (await housekeeping.purge()).job_ids == (failed.job_id,)
    assert not journal.exists()
    assert other.exists(), "a journal of a job still kept stays"
