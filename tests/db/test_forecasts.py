"""The batch-forecast store on both backends: each status change is a compare-and-set."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.records import ForecastFilters, ForecastRecord, NewForecast, Page
from domain.clock import utcnow
from domain.errors import ForecastNotFound
from domain.forecasts import ForecastKind, ForecastStatus
from tests.db.factories import new_model
from tests.db.test_registry import register


@pytest.fixture
async def forecasts(store: JobStore) -> tuple[ForecastStore, str]:
    model = new_model()
    await register(store, model)
    return ForecastStore(store.database), model.model_id


async def test_a_forecast_runs_once_and_finishes_once(
    forecasts: tuple[ForecastStore, str],
) -> None:
    store, model_id = forecasts
    created = await store.create(NewForecast("tenant-a", model_id, "fs", 24, ("a", "b")), utcnow())
    assert (created.status, created.series, created.attempts) == (
        ForecastStatus.QUEUED,
        ("a", "b"),
        0,
    )
    forecast_id = created.forecast_id
    assert await store.start(forecast_id, utcnow())
    assert not await store.start(forecast_id, utcnow())
    assert await store.set_progress(forecast_id, 0.5)
    assert await store.complete(forecast_id, 48, "/x/forecast.parquet", utcnow())
    assert not await store.fail(forecast_id, "late", utcnow())
    assert not await store.set_progress(forecast_id, 0.2)
    done = await store.get(forecast_id)
    assert (done.status, done.progress, done.rows, done.attempts) == (
        ForecastStatus.COMPLETED,
        1.0,
        48,
        1,
    )
    assert done.finished_at is not None
    assert done.error is None


async def test_requeue_counts_attempts_and_tenants_are_kept_apart(
    forecasts: tuple[ForecastStore, str],
) -> None:
    store, model_id = forecasts
    forecast = NewForecast("tenant-a", model_id, "fs", 24)
    await store.create(forecast, utcnow())
    assert await store.start(forecast.forecast_id, utcnow())
    assert await store.requeue(forecast.forecast_id)
    assert [f.forecast_id for f in await store.in_status(ForecastStatus.QUEUED)] == [
        forecast.forecast_id
    ]
    assert await store.start(forecast.forecast_id, utcnow())
    assert (await store.get(forecast.forecast_id, "tenant-a")).attempts == 2
    with pytest.raises(ForecastNotFound):
        await store.get(forecast.forecast_id, "tenant-b")
    with pytest.raises(ForecastNotFound):
        await store.get("nothing")
    assert await store.fail(forecast.forecast_id, "boom", utcnow())
    assert (await store.get(forecast.forecast_id)).error == "boom"


async def test_constraints_reject_a_bad_status_and_an_unknown_model(
    store: JobStore, forecasts: tuple[ForecastStore, str]
) -> None:
    forecast_store, model_id = forecasts
    forecast = NewForecast("tenant-a", model_id, "fs", 24)
    await forecast_store.create(forecast, utcnow())
    async with store.database.engine.begin() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(
                text("UPDATE ai_batch_forecasts SET status = 'lost' WHERE forecast_id = :f"),
                {"f": forecast.forecast_id},
            )
    with pytest.raises(IntegrityError):
        await forecast_store.create(NewForecast("tenant-a", "t:m:1", "fs", 24), utcnow())


async def test_forecasts_list_newest_first_by_tenant_model_and_status(
    forecasts: tuple[ForecastStore, str], store: JobStore
) -> None:
    forecast_store, model_id = forecasts
    other = new_model(version="20260101.000002")
    await register(store, other)
    now = utcnow()
    made = []
    for minutes, tenant, model in (
        (1, "tenant-a", model_id),
        (2, "tenant-a", other.model_id),
        (3, "tenant-b", model_id),
        (4, "tenant-a", model_id),
    ):
        asked = NewForecast(tenant, model, "fs", 24)
        made.append(await forecast_store.create(asked, now + timedelta(minutes=minutes)))
    assert await forecast_store.start(made[3].forecast_id, now)

    def ids(page: Page[ForecastRecord]) -> list[str]:
        return [f.forecast_id for f in page.items]

    everything = await forecast_store.search(ForecastFilters(), 1, 10)
    assert ids(everything) == [f.forecast_id for f in reversed(made)]
    tenant_a = await forecast_store.search(ForecastFilters(tenant_id="tenant-a"), 1, 2)
    assert (ids(tenant_a), tenant_a.total) == ([made[3].forecast_id, made[1].forecast_id], 3)
    of_model = ForecastFilters(tenant_id="tenant-a", model_id=model_id)
    assert ids(await forecast_store.search(of_model, 1, 10)) == [
        made[3].forecast_id,
        made[0].forecast_id,
    ]
    queued = ForecastFilters(model_id=model_id, status=ForecastStatus.QUEUED)
    assert ids(await forecast_store.search(queued, 1, 10)) == [
        made[2].forecast_id,
        made[0].forecast_id,
    ]


async def test_a_detection_keeps_its_window_and_events_and_lists_apart(
    forecasts: tuple[ForecastStore, str],
) -> None:
    store, model_id = forecasts
    start = utcnow().replace(microsecond=0) - timedelta(days=7)
    detection = NewForecast(
        "tenant-a",
        model_id,
        "fs",
        1,
        kind=ForecastKind.DETECTION,
        window_start=start,
        window_end=start + timedelta(days=1),
    )
    created = await store.create(detection, utcnow())
    forecast = await store.create(NewForecast("tenant-a", model_id, "fs", 24), utcnow())
    assert (created.kind, created.window_start, created.events) == (
        ForecastKind.DETECTION,
        start,
        None,
    )
    assert await store.start(created.forecast_id, utcnow())
    assert await store.complete(created.forecast_id, 24, "/x/detection.parquet", utcnow(), 3)
    done = await store.get(created.forecast_id, "tenant-a", ForecastKind.DETECTION)
    assert (done.rows, done.events, done.window_end) == (24, 3, start + timedelta(days=1))
    with pytest.raises(ForecastNotFound):
        await store.get(created.forecast_id, kind=ForecastKind.FORECAST)
    with pytest.raises(ForecastNotFound):
        await store.get(forecast.forecast_id, kind=ForecastKind.DETECTION)
    detections = await store.search(ForecastFilters(kind=ForecastKind.DETECTION), 1, 10)
    assert [d.forecast_id for d in detections.items] == [created.forecast_id]
    listed = await store.search(ForecastFilters(), 1, 10)
    assert [f.forecast_id for f in listed.items] == [forecast.forecast_id]
    # Recovery sees both kinds.
    assert forecast.forecast_id in {
        f.forecast_id for f in await store.in_status(ForecastStatus.QUEUED)
    }
