"""The rollback rule's watch on the orchestrator, over real stores on both backends: a
promotion whose last look found nothing against it is stored as ``stood`` and never
watched again, even when its policy's rule is edited to look longer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from actors.rollbacks import Rollbacks
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.monitoring import MonitorStore, NewEvaluation
from db.policies import NewPolicy, PolicyStore
from db.promotions import PromotionStore
from db.records import NewLog
from db.registry import CHAMPION, ModelRegistry
from domain.clock import utcnow
from domain.promotions import NO_CHAMPION, Comparison, Decision
from tests.databases import BACKENDS, migrated_store
from tests.db.factories import new_model
from tests.db.test_monitoring import DAY, completed_forecast, evaluation
from tests.db.test_registry import register

NAME = "load_forecast"
V1, V2 = "tenant-a:load_forecast:1", "tenant-a:load_forecast:2"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store(request.param, tmp_path) as store:
        yield store


async def shadowed_forecasts(
    store: JobStore, promotion_id: str, first_day: int, days: int, model: float
) -> None:
    """``days`` daily forecasts of V2 scored ``model`` against the previous champion's 1.0."""
    forecasts, monitor = ForecastStore(store.database), MonitorStore(store.database)
    for day in range(first_day, first_day + days):
        forecast_id = await completed_forecast(forecasts, V2)
        label = (DAY + timedelta(days=day)).strftime("%Y-%m-%d")
        pair = {"model": model, "previous": 1.0}
        shadow = {
            "promotion_id": promotion_id,
            "model_id": V1,
            "rows": 24,
            "metrics": {"mae": pair},
            "days": [{"day": label, "rows": 24, "metrics": {"mae": pair}}],
        }
        scored: NewEvaluation = evaluation(forecast_id, V2, day, 24, model)
        await monitor.save([replace(scored, shadow_promotion_id=promotion_id, shadow=shadow)])


async def test_a_promotion_that_stood_is_not_watched_again_after_its_rule_is_edited(
    store: JobStore,
) -> None:
    await register(
        store, new_model("1", promote=True, comparison=Comparison(None, True, NO_CHAMPION))
    )
    beats = Comparison(V1, True, "beats", {"metric": "mae"})
    await register(store, new_model("2", promote=True, comparison=beats))
    promotions, policies = PromotionStore(store.database), PolicyStore(store.database)
    registry = ModelRegistry(store.database)
    promoted = await promotions.latest_change("tenant-a", NAME)
    assert promoted is not None
    assert (promoted.challenger_id, promoted.champion_id) == (V2, V1)
    rule = {"after_forecasts": 1, "metric": "mae", "margin": 0.0, "min_confidence": 0.0}
    policy = await policies.create(
        NewPolicy("tenant-a", NAME, {}, {"new_rows": 10**9}, 0, 1, None, False, True, rule),
        utcnow(),
    )
    logs: list[NewLog] = []

    async def write_logs(lines: list[NewLog]) -> None:
        logs.extend(lines)

    rollbacks = Rollbacks(
        policies, MonitorStore(store.database), promotions, registry, write_logs=write_logs
    )
    champion = await registry.get(V2)
    assert await rollbacks.shadow_for(champion) is not None

    # Four better days: the last look (4 x 1 forecasts) finds nothing against it.
    await shadowed_forecasts(store, promoted.promotion_id, 0, 4, model=0.9)
    assert await rollbacks.check(utcnow()) == []
    assert await rollbacks.shadow_for(champion) is None
    listed = (await promotions.list("tenant-a", NAME, 1, 10)).items
    assert [p.decision for p in listed] == [Decision.STOOD, Decision.PROMOTED, Decision.PROMOTED]
    stood = listed[0]
    assert stood.reason.startswith("the promotion stands: live MAE 0.9")
    assert stood.evidence["stands"] == promoted.promotion_id
    assert stood.evidence["live"]["policy_id"] == policy.policy_id
    assert len(stood.evidence["live"]["forecasts"]) == 4

    # The rule edited to look at 7 x 4 forecasts, with worse days since: it had reopened
    # the watch and rolled the long-serving champion back on them.
    await policies.update(policy.policy_id, {"rollback": {**rule, "after_forecasts": 7}}, utcnow())
    await shadowed_forecasts(store, promoted.promotion_id, 4, 10, model=2.0)
    assert await rollbacks.check(utcnow()) == []
    assert await rollbacks.shadow_for(champion) is None
    assert (await registry.resolve("tenant-a", NAME, CHAMPION)).model_id == V2
    assert logs == []
    assert (await promotions.list("tenant-a", NAME, 1, 10)).total == 3


async def test_a_failed_pass_of_the_previous_champion_is_no_reason_to_stop_watching(
    store: JobStore,
) -> None:
    """Shadows the previous champion failed to forecast (a storage blip) had counted as
    forecasts it cannot be paired on: four of them stored a 'stood' for good."""
    await register(
        store, new_model("1", promote=True, comparison=Comparison(None, True, NO_CHAMPION))
    )
    await register(
        store,
        new_model("2", promote=True, comparison=Comparison(V1, True, "beats", {"metric": "mae"})),
    )
    promotions, policies = PromotionStore(store.database), PolicyStore(store.database)
    promoted = await promotions.latest_change("tenant-a", NAME)
    assert promoted is not None
    rule = {"after_forecasts": 1, "metric": "mae", "margin": 0.0, "min_confidence": 0.0}
    await policies.create(
        NewPolicy("tenant-a", NAME, {}, {"new_rows": 10**9}, 0, 1, None, False, True, rule),
        utcnow(),
    )

    async def write_logs(lines: list[NewLog]) -> None:
        pass

    registry = ModelRegistry(store.database)
    rollbacks = Rollbacks(
        policies, MonitorStore(store.database), promotions, registry, write_logs=write_logs
    )
    forecasts, monitor = ForecastStore(store.database), MonitorStore(store.database)
    failed = {"promotion_id": promoted.promotion_id, "model_id": V1, "rows": 0}
    for day in range(6):
        forecast_id = await completed_forecast(forecasts, V2)
        shadow = {**failed, "not_compared": "failed: OSError: the bucket timed out"}
        scored = replace(
            evaluation(forecast_id, V2, day, 24, 1.0),
            shadow_promotion_id=promoted.promotion_id,
            shadow=shadow,
        )
        await monitor.save([scored])
    assert await rollbacks.check(utcnow()) == []
    assert not await promotions.stood(promoted)
    assert await rollbacks.shadow_for(await registry.get(V2)) is not None
