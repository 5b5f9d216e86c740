"""Which stored forecasts monitoring scores: forecasts that cannot be scored yet (their
actuals never came) do not hide the newer ones behind them, however many there are, nor
do forecasts made at the same instant fall between two pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors.monitoring import Monitor
from db.database import Database
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.monitoring import MonitorStore, Unscored
from db.records import NewForecast, NewModel
from db.registry import ModelRegistry
from domain.events import JobEvent
from domain.forecasts import ForecastSource
from pipeline.forecast_files import write_forecast
from pipeline.forecasting.output import logged_forecast
from pipeline.monitoring.drift import Health, Status
from pipeline.monitoring.evaluate import Evaluated, MonitorTask, monitor_model
from pipeline.monitoring.scores import ForecastScores
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from tests.databases import migrated_store
from tests.db.factories import new_job, new_model

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Unscoreds:
    """``MonitorStore.unscored`` over a list: the forecasts created after a time, oldest
    first, a page at a time."""

    def __init__(self, forecasts: list[Unscored]) -> None:
        self.forecasts = sorted(forecasts, key=lambda f: f.created_at)
        self.pages = 0

    async def unscored(
        self, created_after: datetime, limit: int, after_id: str | None = None
    ) -> list[Unscored]:
        self.pages += 1
        if after_id is None:
            return [f for f in self.forecasts if f.created_at > created_after][:limit]
        cursor = (created_after, after_id)
        return [f for f in self.forecasts if (f.created_at, f.forecast_id) > cursor][:limit]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    yield database
    await database.close()


def forecast(number: int, evaluated_version: str | None) -> Unscored:
    return Unscored(
        forecast_id=f"f{number}",
        model_id="tenant-a:m:1",
        tenant_id="tenant-a",
        feature_set="s",
        source=ForecastSource.PREDICT,
        artifact_uri=f"/forecasts/f{number}",
        created_at=NOW - timedelta(days=10) + timedelta(minutes=number // 3),  # in threes
        evaluated_version=evaluated_version,
    )


async def test_forecasts_waiting_for_actuals_do_not_hide_newer_ones(
    tmp_path: Path, database: Database
) -> None:
    settings = PipelineSettings(data_dir=tmp_path)
    current = FeatureStore(settings.features_root, "tenant-a").put(
        "s", load_series(seed=1, hours=48), timestamp_column="timestamp", target_column="load_kw"
    )
    stuck = [forecast(n, current.pinned_version) for n in range(5)]  # scored on this version
    fresh = [forecast(n, None) for n in range(5, 8)]
    store = Unscoreds([*stuck, *fresh])

    async def no_launch(task: object) -> list[object]:
        raise AssertionError("nothing is scored here")

    monitor = Monitor(
        store,  # type: ignore[arg-type]
        ModelRegistry(database),
        settings,
        launch=no_launch,  # type: ignore[arg-type]
        report=lambda model_id, figures: None,
        clock=lambda: NOW,
        max_age=timedelta(days=30),
        batch=2,
    )
    due = await monitor.due_forecasts()
    assert [f.forecast_id for f in due] == ["f5", "f6"]  # a batch, past the five stuck
    assert store.pages == 4


async def registered(jobs: JobStore) -> NewModel:
    """A forecast model of set ``s``, registered by a completed job."""
    model = new_model(feature_set="s")
    job = await jobs.create_job(new_job())
    await jobs.transition(job.job_id, JobEvent.START)
    await jobs.transition(job.job_id, JobEvent.COMPLETE, model=model)
    return model


def set_of(settings: PipelineSettings, hours: int) -> FeatureStore:
    """Tenant-a's store with set ``s`` of ``hours`` rows as its new current version."""
    store = FeatureStore(settings.features_root, "tenant-a")
    put = {"timestamp_column": "timestamp", "target_column": "load_kw"}
    store.put("s", load_series(seed=1, hours=hours), **put)
    return store


async def test_a_forecast_without_rows_is_scored_once_and_not_due_again(
    tmp_path: Path,
) -> None:
    """Stored before empty predictions stopped being logged: due for ever, the oldest
    held monitoring's batch from every newer forecast, of every model."""
    async with migrated_store("sqlite", tmp_path) as jobs:
        model = await registered(jobs)
        settings = PipelineSettings(data_dir=tmp_path)
        set_of(settings, hours=48)
        empty = NewForecast("tenant-a", model.model_id, "s", 24)
        location = Location(str(tmp_path / "empty.parquet"))
        write_forecast(location, logged_forecast([]))
        await ForecastStore(jobs.database).add_logged(empty, 0, str(location), NOW)
        launched: list[list[str]] = []

        async def launch(task: MonitorTask) -> list[Evaluated]:
            launched.append([f.forecast_id for f in task.forecasts])
            return monitor_model(task, FeatureStore(settings.features_root, task.tenant_id))

        monitor = Monitor(
            MonitorStore(jobs.database),
            ModelRegistry(jobs.database),
            settings,
            launch=launch,
            report=lambda model_id, figures: None,
            clock=lambda: NOW,
            max_age=timedelta(days=30),
        )
        await monitor.step()
        await monitor.step()
        assert launched == [[empty.forecast_id]]


@pytest.mark.parametrize(
    ("old_rows", "new_rows", "shown"),
    [(23, 24, [10.0]), (24, 10, [50.0])],
    ids=["old-scored-again", "new-scored-partly"],
)
async def test_the_gauges_show_the_newest_forecast_with_drift_checks(
    tmp_path: Path, old_rows: int, new_rows: int, shown: list[float]
) -> None:
    """The gauges show the newest forecast that has its drift checks (90 % of its rows
    scored): an old forecast still waiting for an actual, scored again on each new version
    of its set, had replaced the newest one's figures; and a newer forecast only partly
    scored had kept every figure off the gauges."""
    async with migrated_store("sqlite", tmp_path) as jobs:
        model = await registered(jobs)
        settings = PipelineSettings(data_dir=tmp_path)
        store = set_of(settings, hours=48)
        old, new = (NewForecast("tenant-a", model.model_id, "s", 24) for _ in range(2))
        for forecast, age in ((old, 20), (new, 1)):
            location = Location(str(tmp_path / f"{forecast.forecast_id}.parquet"))
            write_forecast(location, logged_forecast([]))
            created = NOW - timedelta(days=age)
            await ForecastStore(jobs.database).add_logged(forecast, 24, location.path, created)
        rows_scored = {old.forecast_id: old_rows, new.forecast_id: new_rows}
        mae = {old.forecast_id: 50.0, new.forecast_id: 10.0}

        async def launch(task: MonitorTask) -> list[Evaluated]:
            return [
                Evaluated(
                    f.forecast_id,
                    f.created_at or NOW,
                    24,
                    store.schema("s").pinned_version,
                    ForecastScores(
                        24, rows_scored[f.forecast_id], {"coverage_80": mae[f.forecast_id]}
                    ),
                    Health(Status.OK, None) if rows_scored[f.forecast_id] >= 22 else None,
                )
                for f in task.forecasts
            ]

        reported: list[float] = []
        monitor = Monitor(
            MonitorStore(jobs.database),
            ModelRegistry(jobs.database),
            settings,
            launch=launch,
            report=lambda model_id, figures: reported.append(figures["live_coverage_80"]),
            clock=lambda: NOW,
            max_age=timedelta(days=30),
        )
        await monitor.step()
        set_of(settings, hours=49)  # a new version: the unfinished forecast is due again
        await monitor.step()
        assert reported[-1:] == shown
