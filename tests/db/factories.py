"""Records for store tests, with defaults a test overrides where it matters."""

from __future__ import annotations

from collections.abc import Sequence

from db.database import Database
from db.logs import add_logs
from db.records import NewJob, NewLog, NewModel
from domain.jobs import ModelType


def new_job(**overrides: object) -> NewJob:
    fields: dict[str, object] = {
        "tenant_id": "tenant-a",
        "model_type": ModelType.FORECAST,
        "model_name": "load_forecast",
        "feature_set": "forecast_basic",
        "priority": 0,
        "config": {"horizon": 24, "target_variable": "load_kw"},
    }
    fields.update(overrides)
    return NewJob(**fields)  # type: ignore[arg-type]


def new_model(version: str = "20260101.000000", **overrides: object) -> NewModel:
    fields: dict[str, object] = {
        "tenant_id": "tenant-a",
        "model_name": "load_forecast",
        "model_type": ModelType.FORECAST,
        "version": version,
        "feature_set": "forecast_basic",
        "artifact_uri": "/tmp/artifacts/x",
        "metrics": {"mae": 1.5},
        "params": {"num_leaves": 31},
        "features": ["hour", "lag_24"],
    }
    fields.update(overrides)
    return NewModel(**fields)  # type: ignore[arg-type]


async def append_logs(database: Database, entries: Sequence[NewLog]) -> None:
    """Log lines written on their own, as no caller of the service writes them."""
    async with database.transaction() as session:
        await add_logs(session, entries)
