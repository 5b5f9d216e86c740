"""Retention of feature-set versions, on both backends: what a registered model or an
unfinished job read is kept, the rest goes once the grace period has passed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors.forecasts import ForecastRunner
from actors.housekeeping import Housekeeping
from actors.queue import JobQueue
from actors.settings import OrchestratorSettings
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.registry import ModelRegistry
from domain.events import JobEvent
from pipeline.demo import load_series
from pipeline.feature_store import FeatureStore
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from tests.databases import BACKENDS, migrated_store
from tests.db.factories import new_job, new_model


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store(request.param, tmp_path) as store:
        yield store


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

    now = datetime.now(UTC)
    settings = OrchestratorSettings()
    forecasts = ForecastRunner(
        ForecastStore(store.database),
        ModelRegistry(store.database),
        PipelineSettings(data_dir=tmp_path),
        max_attempts=settings.max_attempts,
        outage_seconds=settings.database_outage_seconds,
        clock=lambda: now,
        progress_for=lambda forecast_id: lambda progress: None,  # no forecast runs here
    )
    housekeeping = Housekeeping(
        store,
        JobQueue(),
        settings,
        features,
        clock=lambda: now,
        tracked=lambda _: False,
        forecasts=forecasts,
    )
    assert (await housekeeping.purge()).feature_versions == ()  # all within the grace hour
    now += timedelta(hours=2)
    report = await housekeeping.purge()

    assert sorted(r.rsplit("@", 1)[1] for r in report.feature_versions) == [
        versions[1],
        versions[3],
    ]
    kept = [v.pinned_version for v in features.versions("s")]
    assert kept == [versions[0], versions[2], versions[4]]
    assert (await store.get_job(trained.job_id)).feature_set_version == versions[0]
