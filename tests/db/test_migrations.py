"""Migrations keep existing rows: 0002 rebuilds ai_experiments without losing a metric,
0011 keeps the batch forecasts as forecasts, 0012 the promotions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db.database import Database
from db.experiments import ExperimentCatalog
from db.forecasts import ForecastStore
from db.migrate import upgrade
from db.policies import PolicyStore
from db.records import ForecastFilters
from domain.forecasts import ForecastKind
from tests.databases import BACKENDS, fresh_database

ROWS_AT_0001 = [
    "INSERT INTO ai_training_jobs (job_id, tenant_id, model_type, model_name, feature_set, "
    "status, priority, progress, config, attempts, created_at, updated_at) VALUES "
    "('job-1', 'tenant-a', 'forecast', 'load', 'fs', 'completed', 0, 1.0, '{}', 1, "
    "'2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    "INSERT INTO ai_experiments (experiment_id, job_id, name, status, created_at) VALUES "
    "('exp-1', 'job-1', 'load attempt 1', 'completed', '2026-01-01 00:00:00')",
    "INSERT INTO ai_experiment_metrics (experiment_id, name, value, step, recorded_at) VALUES "
    "('exp-1', 'validation_l1', 2.5, 1, '2026-01-01 00:00:00'), "
    "('exp-1', 'validation_l1', 2.0, 2, '2026-01-01 00:00:00')",
    "INSERT INTO ai_experiment_params (experiment_id, name, value, value_type) VALUES "
    "('exp-1', 'num_leaves', '31', 'int')",
]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_0002_keeps_experiments_metrics_and_params(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path) as url:
        database = Database.from_url(url)
        await upgrade(database.engine, "0001")
        async with database.engine.begin() as conn:
            for statement in ROWS_AT_0001:
                await conn.execute(text(statement))
        await upgrade(database.engine)
        catalog = ExperimentCatalog(database)
        [experiment] = await catalog.of_job("job-1")
        assert (experiment.tenant_id, experiment.model_name) == ("tenant-a", "load")
        assert experiment.params == {"num_leaves": 31}
        assert experiment.metrics == {"validation_l1": 2.0}
        history = await catalog.metric_history("exp-1", "validation_l1")
        assert [p.value for p in history] == [2.5, 2.0]
        await database.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_0010_keeps_policies_without_a_rollback_rule(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path) as url:
        database = Database.from_url(url)
        await upgrade(database.engine, "0009")
        async with database.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO ai_retrain_policies (policy_id, tenant_id, model_name, job, "
                    "rules, cooldown_seconds, max_per_day, warm_start, enabled, created_at, "
                    "updated_at) VALUES ('p-1', 'tenant-a', 'load', '{}', "
                    "'{\"new_rows\": 5}', 0, 1, true, true, '2026-01-01 00:00:00', "
                    "'2026-01-01 00:00:00')"
                )
            )
        await upgrade(database.engine)
        policy = await PolicyStore(database).get("p-1")
        assert (policy.rules, policy.rollback) == ({"new_rows": 5}, None)
        await database.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_0011_keeps_forecasts_as_forecasts(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path) as url:
        database = Database.from_url(url)
        await upgrade(database.engine, "0010")
        async with database.engine.begin() as conn:
            for statement in ROWS_AT_0001[:1]:
                await conn.execute(text(statement))
            await conn.execute(
                text(
                    "INSERT INTO ai_models (model_id, tenant_id, model_name, version, job_id, "
                    "model_type, feature_set, artifact_uri, metrics, params, features, "
                    "created_at) VALUES ('tenant-a:load:1', 'tenant-a', 'load', '1', 'job-1', "
                    "'forecast', 'fs', '/m', '{}', '{}', '[]', '2026-01-01 00:00:00')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO ai_batch_forecasts (forecast_id, tenant_id, model_id, "
                    "feature_set, horizon, status, source, progress, attempts, created_at) "
                    "VALUES ('f-1', 'tenant-a', 'tenant-a:load:1', 'fs', 24, 'queued', "
                    "'batch', 0, 0, '2026-01-01 00:00:00')"
                )
            )
        await upgrade(database.engine)
        store = ForecastStore(database)
        forecast = await store.get("f-1")
        assert (forecast.kind, forecast.window_start, forecast.events) == (
            ForecastKind.FORECAST,
            None,
            None,
        )
        detections = await store.search(ForecastFilters(kind=ForecastKind.DETECTION), 1, 10)
        assert detections.total == 0
        await database.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_0012_keeps_promotions_and_takes_stood_decisions(
    backend: str, tmp_path: Path
) -> None:
    insert = (
        "INSERT INTO ai_promotions (promotion_id, tenant_id, model_name, challenger_id, "
        "champion_id, decision, job_id, evidence, reason, decided_at) VALUES "
        "('{id}', 'tenant-a', 'load', 'tenant-a:load:2', 'tenant-a:load:1', '{decision}', "
        "NULL, '{{}}', 'r', '2026-01-01 00:00:00')"
    )
    async with fresh_database(backend, tmp_path) as url:
        database = Database.from_url(url)
        await upgrade(database.engine, "0011")
        async with database.engine.begin() as conn:
            await conn.execute(text(insert.format(id="p-1", decision="promoted")))
        with pytest.raises(IntegrityError):
            async with database.engine.begin() as conn:
                await conn.execute(text(insert.format(id="p-2", decision="stood")))
        await upgrade(database.engine)
        async with database.engine.begin() as conn:
            await conn.execute(text(insert.format(id="p-2", decision="stood")))
            rows = await conn.execute(text("SELECT promotion_id, decision FROM ai_promotions"))
            assert sorted(rows.all()) == [("p-1", "promoted"), ("p-2", "stood")]
        with pytest.raises(IntegrityError):
            async with database.engine.begin() as conn:
                await conn.execute(text(insert.format(id="p-3", decision="unheard of")))
        await database.close()
