"""Monitoring's rows on both backends: which forecasts still have rows to score, one
evaluation per forecast (replaced when more actuals arrive), pages by forecast date."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.monitoring import MonitorStore, NewEvaluation
from db.records import NewForecast
from domain.clock import utcnow
from domain.errors import EvaluationNotFound
from domain.forecasts import ForecastSource
from tests.db.factories import new_model
from tests.db.test_registry import register

DAY = datetime(2026, 3, 1, tzinfo=UTC)


async def completed_forecast(forecasts: ForecastStore, model_id: str) -> str:
    created = await forecasts.create(NewForecast("tenant-a", model_id, "fs", 24), utcnow())
    await forecasts.start(created.forecast_id, utcnow())
    await forecasts.complete(created.forecast_id, 48, f"/f/{created.forecast_id}", utcnow())
    return created.forecast_id


def evaluation(
    forecast_id: str, model_id: str, day: int, rows: int, mae: float, version: str = "v2"
) -> NewEvaluation:
    return NewEvaluation(
        forecast_id=forecast_id,
        model_id=model_id,
        tenant_id="tenant-a",
        feature_set="fs",
        feature_set_version=version,
        origin=DAY + timedelta(days=day),
        forecast_rows=48,
        rows=rows,
        metrics={"mae": mae} if rows else {},
        by_lead=[{"lead": 1, "mae": mae}] if rows else [],
        by_series={"a": {"mae": mae}} if rows else {},
        health={"status": "ok"} if rows else {},
        evaluated_at=utcnow(),
    )


@pytest.fixture
async def stores(store: JobStore) -> tuple[MonitorStore, ForecastStore, str]:
    model = new_model()
    await register(store, model)
    return MonitorStore(store.database), ForecastStore(store.database), model.model_id


async def test_a_forecast_is_unscored_until_all_its_rows_have_actuals(
    stores: tuple[MonitorStore, ForecastStore, str],
) -> None:
    monitor, forecasts, model_id = stores
    forecast_id = await completed_forecast(forecasts, model_id)
    queued = await forecasts.create(NewForecast("tenant-a", model_id, "fs", 24), utcnow())
    week_ago = utcnow() - timedelta(days=7)

    [unscored] = await monitor.unscored(week_ago, 10)
    assert (unscored.forecast_id, unscored.evaluated_version) == (forecast_id, None)
    assert (unscored.source, unscored.artifact_uri) == (ForecastSource.BATCH, f"/f/{forecast_id}")
    assert queued.forecast_id not in {u.forecast_id for u in await monitor.unscored(week_ago, 10)}
    assert await monitor.unscored(utcnow(), 10) == []  # created before the cut-off

    await monitor.save([evaluation(forecast_id, model_id, 0, 24, 2.0)])
    [partly] = await monitor.unscored(week_ago, 10)
    assert partly.evaluated_version == "v2"

    await monitor.save([evaluation(forecast_id, model_id, 0, 48, 3.0, version="v3")])
    assert await monitor.unscored(week_ago, 10) == []
    scored = await monitor.get(model_id, forecast_id)
    assert (scored.rows, scored.metrics, scored.feature_set_version) == (48, {"mae": 3.0}, "v3")


async def test_unscored_forecasts_made_at_one_instant_page_by_their_ids(
    stores: tuple[MonitorStore, ForecastStore, str],
) -> None:
    monitor, forecasts, model_id = stores
    instant = utcnow()
    for _ in range(3):
        created = await forecasts.create(NewForecast("tenant-a", model_id, "fs", 24), instant)
        await forecasts.start(created.forecast_id, instant)
        await forecasts.complete(created.forecast_id, 48, "/f", instant)
    week_ago = instant - timedelta(days=7)
    every = [u.forecast_id for u in await monitor.unscored(week_ago, 10)]
    assert every == sorted(every)
    assert len(every) == 3
    first = await monitor.unscored(week_ago, 2)
    rest = await monitor.unscored(first[-1].created_at, 2, first[-1].forecast_id)
    assert [u.forecast_id for u in [*first, *rest]] == every


async def test_evaluations_page_by_forecast_date_and_skip_those_without_actuals(
    stores: tuple[MonitorStore, ForecastStore, str],
) -> None:
    monitor, forecasts, model_id = stores
    ids = [await completed_forecast(forecasts, model_id) for _ in range(4)]
    await monitor.save(
        [
            evaluation(ids[0], model_id, 2, 48, 1.0),
            evaluation(ids[1], model_id, 0, 48, 2.0),
            evaluation(ids[2], model_id, 1, 48, 4.0),
            evaluation(ids[3], model_id, 3, 0, 0.0),  # no actual yet
        ]
    )
    page = await monitor.search(model_id, None, None, 1, 2)
    assert page.total == 3
    assert [e.forecast_id for e in page.items] == [ids[0], ids[2]]
    window = await monitor.search(model_id, DAY, DAY + timedelta(days=2), 1, 10)
    assert [e.forecast_id for e in window.items] == [ids[2], ids[1]]
    latest = await monitor.latest(model_id)
    assert latest is not None
    assert latest.forecast_id == ids[0]

    recent = await monitor.recent_maes(model_id, DAY + timedelta(days=2), 5)
    assert recent == [(ids[1], DAY, 2.0), (ids[2], DAY + timedelta(days=1), 4.0)]
    # A forecast with 5 of its 48 rows scored is no live window yet, where it must be one.
    partial = await completed_forecast(forecasts, model_id)
    await monitor.save([evaluation(partial, model_id, 1, 5, 9.0)])
    assert len(await monitor.recent_maes(model_id, DAY + timedelta(days=2), 5)) == 3
    assert await monitor.recent_maes(model_id, DAY + timedelta(days=2), 5, 0.9) == recent

    with pytest.raises(EvaluationNotFound):
        await monitor.get(model_id, ids[3])  # nothing scored yet
    with pytest.raises(EvaluationNotFound):
        await monitor.get("tenant-a:other:1", ids[0])


async def test_shadow_scores_are_kept_by_promotion_in_forecast_date_order(
    stores: tuple[MonitorStore, ForecastStore, str],
) -> None:
    monitor, forecasts, model_id = stores
    ids = [await completed_forecast(forecasts, model_id) for _ in range(4)]

    def shadowed(at: int, day: int, rows: int, promotion: str = "p1") -> NewEvaluation:
        shadow = {"promotion_id": promotion, "model_id": "old", "rows": rows}
        return replace(
            evaluation(ids[at], model_id, day, rows, 1.0),
            shadow_promotion_id=promotion,
            shadow=shadow,
        )

    await monitor.save(
        [
            shadowed(0, 2, 24),
            shadowed(1, 0, 24),
            shadowed(2, 1, 24, promotion="p2"),
            shadowed(3, 3, 0),  # no actual yet: not paired
        ]
    )
    found = await monitor.shadowed("p1", 10)
    assert [key for key, _ in found] == [ids[1], ids[0]]
    assert found[0][1] == {"promotion_id": "p1", "model_id": "old", "rows": 24}
    assert [key for key, _ in await monitor.shadowed("p1", 1)] == [ids[1]]
    # Scored again without a shadow (its rule's check has ended): the shadow stays.
    await monitor.save([evaluation(ids[1], model_id, 0, 48, 2.0)])
    again = await monitor.get(model_id, ids[1])
    assert (again.rows, again.shadow_promotion_id) == (48, "p1")
    assert again.shadow is not None
    # Scored again with a shadow that compared nothing (the previous champion failed this
    # time): the paired scores stay.
    failed = {"promotion_id": "p1", "model_id": "old", "rows": 0, "not_compared": "failed: x"}
    await monitor.save(
        [replace(evaluation(ids[1], model_id, 0, 48, 3.0), shadow_promotion_id="p1", shadow=failed)]
    )
    kept = await monitor.get(model_id, ids[1])
    assert kept.metrics == {"mae": 3.0}
    assert kept.shadow == {"promotion_id": "p1", "model_id": "old", "rows": 24}
    # A shadow that had compared nothing either is replaced by the failure.
    await monitor.save(
        [replace(evaluation(ids[3], model_id, 3, 48, 1.0), shadow_promotion_id="p1", shadow=failed)]
    )
    assert (await monitor.get(model_id, ids[3])).shadow == failed
