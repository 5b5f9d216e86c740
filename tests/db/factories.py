"""Records for store tests, with defaults a test overrides where it matters."""

from __future__ import annotations

from db.records import NewJob, NewModel
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
