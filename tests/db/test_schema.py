"""The migrated schema on every backend: tables, views, and the constraints that hold
whatever the code does."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.migrate import upgrade
from tests.db.factories import new_job


async def test_migration_creates_tables_and_views(store: JobStore) -> None:
    async with store.database.engine.connect() as conn:
        names = await conn.run_sync(
            lambda c: (inspect(c).get_table_names(), inspect(c).get_view_names())
        )
    tables, views = names
    assert {
        "ai_training_jobs",
        "ai_experiments",
        "ai_experiment_metrics",
        "ai_experiment_params",
        "ai_training_logs",
        "ai_models",
    } <= set(tables)
    assert {"active_training_jobs", "experiment_summary"} <= set(views)


async def test_migration_is_idempotent(store: JobStore) -> None:
    job = await store.create_job(new_job())
    await upgrade(store.database.engine)
    assert (await store.get_job(job.job_id)).job_id == job.job_id


async def test_parameter_names_are_unique_per_experiment(store: JobStore) -> None:
    job = await store.create_job(new_job())
    experiment_id = await ExperimentCatalog(store.database).create_experiment(
        job.job_id, "train", {"a": 1}
    )
    async with store.database.engine.begin() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(
                text(
                    "INSERT INTO ai_experiment_params (experiment_id, name, value, value_type) "
                    "VALUES (:e, 'a', '2', 'int')"
                ),
                {"e": experiment_id},
            )


async def test_check_constraints_reject_bad_status(store: JobStore) -> None:
    job = await store.create_job(new_job())
    async with store.database.engine.begin() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(
                text("UPDATE ai_training_jobs SET status = 'exploded' WHERE job_id = :j"),
                {"j": job.job_id},
            )
