"""A forecast's drift checks are taken once most of its rows have their actuals: a window
of its first row or two is no window of the horizon the test part is held to. Real model
(trained in process on the demo set), real feature store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.forecast_files import write_forecast
from pipeline.forecasting.output import logged_forecast
from pipeline.graph.runner import run_in_process
from pipeline.monitoring.evaluate import MonitorTask, PendingForecast, monitor_model
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore


@pytest.fixture(scope="module")
def model(demo_store: FeatureStore, tmp_path_factory: pytest.TempPathFactory) -> str:
    config = TrainingConfig(
        feature_set="forecast_basic",
        target_variable="load_kw",
        hyperparameters={"n_estimators": 30, "objective": "regression"},
    )
    context = JobContext("job-1", "tenant-a", ModelType.FORECAST, "load", config)
    root = tmp_path_factory.mktemp("artifacts")
    settings = PipelineSettings(features_dir=str(demo_store.root), artifacts_dir=str(root))
    saved, _ = run_in_process(context, settings)
    return saved.artifact_uri


def test_drift_is_checked_once_most_of_a_forecasts_rows_are_scored(
    demo_store: FeatureStore, model: str, tmp_path: Path
) -> None:
    last = demo_store.load("forecast_basic").data["timestamp"].iloc[-1]
    for arrived, checked in ((2, False), (24, True)):  # the set's last 2 or 24 hours
        first = last - pd.Timedelta(hours=arrived - 1)
        stamps = pd.date_range(first, periods=24, freq="h")
        forecast = Location(str(tmp_path / f"forecast-{arrived}.parquet"))
        rows = [{"timestamp": t.isoformat(), "predicted": 100.0, "actual": None} for t in stamps]
        write_forecast(forecast, logged_forecast(rows))
        pending = (PendingForecast("f", forecast.path),)
        task = MonitorTask("tenant-a:load:1", model, "tenant-a", "forecast_basic", pending)
        [evaluated] = monitor_model(task, demo_store)
        assert (evaluated.scores.rows, evaluated.scores.forecast_rows) == (arrived, 24)
        assert (evaluated.health is not None) is checked
