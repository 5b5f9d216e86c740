"""Monthly data: months are 28 to 31 days, so its model's step (the median, 31 days) is a
calendar month. Served requests step by months, and batch forecasts fall on month starts
(a fixed 31 days had drifted off them, and missed the set's own future covariates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.forecasting.batch import forecast_chunk, load_history
from pipeline.forecasting.predict import predict_rows
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import ModelArtifact, load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

MONTHS = pd.date_range("2000-01-01", periods=150, freq="MS", tz="UTC")


def monthly() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frames = [
        pd.DataFrame(
            {
                "timestamp": MONTHS,
                "meter": meter,
                "load_kw": 100 * (i + 1)
                + 10 * np.sin(MONTHS.month / 12 * 2 * np.pi)
                + rng.normal(0, 2, len(MONTHS)),
            }
        )
        for i, meter in enumerate(["a", "b"])
    ]
    return pd.concat(frames, ignore_index=True)


def trained(
    root: Path, frame: pd.DataFrame, series: str | None, horizon: int, **fields: Any
) -> tuple[FeatureStore, ModelArtifact]:
    """A store of ``frame`` (set "s", target ``load_kw``) and a small model of it trained
    in process, ``horizon`` steps ahead."""
    store = FeatureStore(Location(str(root / "features")))
    store.put(
        "s", frame, timestamp_column="timestamp", target_column="load_kw", series_column=series
    )
    config = TrainingConfig.model_validate(
        {
            "feature_set": "s",
            "target_variable": "load_kw",
            "horizon": horizon,
            "hyperparameters": {"n_estimators": 20, "min_child_samples": 5},
            **fields,
        }
    )
    context = JobContext("job-s", "tenant-a", ModelType.FORECAST, "s", config)
    settings = PipelineSettings(features_dir=str(store.root), artifacts_dir=str(root / "art"))
    saved, _ = run_in_process(context, settings)
    return store, load_artifact(Location(saved.artifact_uri))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, ModelArtifact]:
    return trained(tmp_path_factory.mktemp("monthly"), monthly(), "meter", horizon=3)


def test_a_request_stepping_by_months_is_served(
    setup: tuple[FeatureStore, ModelArtifact],
) -> None:
    _, artifact = setup
    rows = monthly().query("meter == 'a'").tail(40).reset_index(drop=True)
    rows.loc[rows.index[-3:], "load_kw"] = np.nan
    body = [
        {str(k): v for k, v in r.items()} | {"timestamp": r["timestamp"].isoformat()}
        for r in rows.to_dict("records")
    ]
    served = predict_rows(artifact, body).rows
    assert [p.timestamp for p in served if p.actual is None] == list(MONTHS[-3:])


def test_a_request_is_served_a_horizon_of_months_and_no_more(tmp_path: Path) -> None:
    """Nine months of 31 days with slack had reached a tenth month, whose horizon-old lag
    is the unknown future."""
    _, artifact = trained(tmp_path, monthly(), "meter", horizon=9, quantiles=[])
    rows = monthly().query("meter == 'a'").reset_index(drop=True)
    future = pd.date_range(MONTHS[-1], periods=15, freq="MS", tz="UTC")[1:]
    rows = pd.concat([rows, pd.DataFrame({"timestamp": future, "meter": "a"})], ignore_index=True)
    body = [
        {str(k): v for k, v in r.items() if not pd.isna(v) or k == "load_kw"}
        | {"timestamp": r["timestamp"].isoformat()}
        for r in rows.to_dict("records")
    ]
    served = predict_rows(artifact, body).rows
    assert [p.timestamp for p in served if p.actual is None] == list(future[:9])


def test_a_batch_forecast_falls_on_month_starts(
    setup: tuple[FeatureStore, ModelArtifact],
) -> None:
    store, artifact = setup
    table = forecast_chunk(artifact, load_history(store, artifact.metadata, "s", 3, None), 3)
    expected = list(pd.date_range(MONTHS[-1], periods=4, freq="MS")[1:])
    for _, forecast in table.groupby("series"):
        assert list(forecast["timestamp"]) == expected
    assert table["predicted"].notna().all()


def test_a_quarterly_request_is_forecast_a_quarter_of_92_days_ahead(tmp_path: Path) -> None:
    """Quarters are 90 to 92 days and the model's step their median, 91: the next quarter
    had fallen outside a horizon of one step, and out of the answer."""
    quarters = pd.date_range("2000-01-01", periods=100, freq="QS", tz="UTC")
    data = pd.concat(
        [
            pd.DataFrame({"timestamp": quarters, "meter": m, "load_kw": level + 0.0}).assign(
                load_kw=lambda t: t["load_kw"] + np.sin(np.arange(len(t)))
            )
            for m, level in (("a", 10), ("b", 20))
        ],
        ignore_index=True,
    )
    _, artifact = trained(tmp_path, data, "meter", horizon=1)
    rows = data.query("meter == 'a'").tail(40).reset_index(drop=True)
    assert rows["timestamp"].iloc[-1] - rows["timestamp"].iloc[-2] == pd.Timedelta(days=92)
    rows.loc[rows.index[-1], "load_kw"] = np.nan
    body = [
        {str(k): v for k, v in r.items()} | {"timestamp": r["timestamp"].isoformat()}
        for r in rows.to_dict("records")
    ]
    served = predict_rows(artifact, body).rows
    assert [p.timestamp for p in served if p.actual is None] == [rows["timestamp"].iloc[-1]]


def test_a_daily_request_across_a_daylight_saving_change_is_served(tmp_path: Path) -> None:
    """Local midnights are 25 hours apart across October's change: the request had been
    refused as uneven, then its future row fell an hour past a horizon of 24 hours."""
    days = pd.date_range("2022-01-01", "2024-10-28", freq="D", tz="Europe/Berlin")
    rng = np.random.default_rng(3)
    load = 100 + 10 * np.sin(2 * np.pi * np.arange(len(days)) / 7) + rng.normal(0, 1, len(days))
    frame = pd.DataFrame({"timestamp": days.tz_convert("UTC"), "load_kw": load})
    _, artifact = trained(tmp_path, frame, None, horizon=1, quantiles=[])
    rows = frame.tail(400).reset_index(drop=True)
    rows.loc[rows.index[-1], "load_kw"] = np.nan  # October 28th: 25 hours after the 27th
    body = [
        {"timestamp": r["timestamp"].isoformat(), "load_kw": r["load_kw"]}
        for r in rows.to_dict("records")
    ]
    served = predict_rows(artifact, body).rows
    assert [p.timestamp for p in served if p.actual is None] == [rows["timestamp"].iloc[-1]]
