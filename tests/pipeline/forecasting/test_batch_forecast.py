"""Batch forecasts without Ray: what they refuse, and that they equal served predictions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pipeline.forecasting.request_checks as request_checks
from domain.errors import InvalidRequest
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.forecasting.batch import (
    adaptation_reach,
    check_request,
    forecast_chunk,
    load_history,
    plan_forecast,
    read_chunk,
)
from pipeline.forecasting.predict import history_needed, predict_rows
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import ModelArtifact, load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureFrame, FeatureStore

HORIZON = 24


def meters(count: int = 3, days: int = 35) -> pd.DataFrame:
    frames = []
    for i in range(count):
        meter = load_series(seed=40 + i, hours=24 * days).drop(columns=["humidity_pct"])
        meter["load_kw"] *= 1 + i
        frames.append(meter.assign(meter=f"m{i}"))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, ModelArtifact]:
    root = tmp_path_factory.mktemp("forecast")
    store = FeatureStore(Location(str(root / "features")))
    put = {"timestamp_column": "timestamp", "target_column": "load_kw", "series_column": "meter"}
    store.put("meters", meters(), **put)
    future = meters()
    future.loc[
        future["timestamp"] >= future["timestamp"].max() - pd.Timedelta(hours=5), "load_kw"
    ] = np.nan
    store.put("meters_ahead", future, **put)
    store.put("bare", meters().drop(columns=["temperature_c"]), **put)
    gappy = meters()
    gappy.loc[gappy["meter"] == "m1", "load_kw"] = np.nan  # no known target
    gappy.loc[(gappy["meter"] == "m2") & (gappy.index % (24 * 35) < 24 * 34), "load_kw"] = np.nan
    store.put("gappy", gappy, **put)  # m2: one day of history, less than its lags need
    long = meters(days=70)
    long.loc[(long["meter"] == "m1") & (long.index % (24 * 70) >= 24 * 67), "load_kw"] = np.nan
    store.put("long", long, **put)  # twice the model's window; m1 ends three days early
    context = JobContext(
        job_id="job-1",
        tenant_id="tenant-a",
        model_type=ModelType.FORECAST,
        model_name="meters",
        config=TrainingConfig(
            feature_set="meters",
            target_variable="load_kw",
            horizon=HORIZON,
            hyperparameters={"n_estimators": 40, "learning_rate": 0.1},
        ),
    )
    settings = PipelineSettings(features_dir=str(store.root), artifacts_dir=str(root / "art"))
    saved, _ = run_in_process(context, settings)
    return store, load_artifact(Location(saved.artifact_uri))


def test_forecasts_every_series_a_horizon_ahead_with_quantiles(
    setup: tuple[FeatureStore, ModelArtifact],
) -> None:
    store, artifact = setup
    history = load_history(store, artifact.metadata, "meters", HORIZON, None)
    table = forecast_chunk(artifact, history, HORIZON)
    assert list(table.columns) == ["series", "timestamp", "predicted", "q0.1", "q0.5", "q0.9"]
    assert table.groupby("series").size().to_dict() == {"m0": 24, "m1": 24, "m2": 24}
    last = store.load("meters").data["timestamp"].max()
    assert table["timestamp"].min() == last + pd.Timedelta(hours=1)
    assert table["timestamp"].max() == last + pd.Timedelta(hours=HORIZON)
    assert table["predicted"].notna().all()
    assert (table["q0.1"] <= table["q0.9"]).all()
    # Series of different sizes keep their levels.
    levels = table.groupby("series")["predicted"].mean()
    assert levels["m0"] < levels["m1"] < levels["m2"]
    plan = plan_forecast(store, artifact.metadata, "meters", HORIZON, None, size=2)
    parts = [
        forecast_chunk(artifact, read_chunk(store, artifact.metadata, c), HORIZON) for c in plan
    ]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), table)


def test_equals_served_predictions_when_the_set_holds_the_future_covariates(
    setup: tuple[FeatureStore, ModelArtifact],
) -> None:
    store, artifact = setup
    history = load_history(store, artifact.metadata, "meters_ahead", HORIZON, ["m1"])
    table = forecast_chunk(artifact, history, 6)
    data = store.load("meters_ahead").data.query("meter == 'm1'")
    spec = artifact.feature_spec
    recent = round(adaptation_reach(artifact.metadata) / spec.step)
    rows = data.tail(history_needed(spec) + recent + 6)
    served = predict_rows(artifact, _json(rows)).rows[-6:]
    assert [p.timestamp for p in served] == list(table["timestamp"])
    np.testing.assert_allclose([p.predicted for p in served], table["predicted"])
    # The intervals followed the same recent misses, which moved them.
    for key in ("0.1", "0.5", "0.9"):
        quantiles = [p.quantiles[key] for p in served if p.quantiles]
        np.testing.assert_allclose(quantiles, table[f"q{key}"], rtol=1e-9)
    metadata = {k: v for k, v in artifact.metadata.items() if k != "interval_adaptation"}
    static = forecast_chunk(replace(artifact, metadata=metadata), history, 6)
    assert not np.allclose(static["q0.9"] - static["q0.1"], table["q0.9"] - table["q0.1"])


@pytest.mark.parametrize("check", [load_history, check_request])
def test_refuses_what_the_model_cannot_forecast(
    setup: tuple[FeatureStore, ModelArtifact], check: Callable[..., object]
) -> None:
    """``check_request`` (the submit's check, reading key columns in batches) refuses what
    ``load_history`` (the forecast's own read) refuses."""
    store, artifact = setup
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"horizon": HORIZON + 1}, "horizon", "cannot forecast"),
        ({"series": ["m0", "m7"]}, "series", "not in"),
        ({"feature_set": "nothing"}, "feature_set", "no feature set"),
        ({"feature_set": "bare"}, "feature_set", "covariates"),
        ({"feature_set": "gappy"}, "feature_set", "without a known load_kw: ['m1']"),
        ({"feature_set": "gappy", "series": ["m1"]}, "series", "without a known"),
        ({"feature_set": "gappy", "series": ["m0", "m2"]}, "series", "less history"),
    ]
    for change, field, words in cases:
        request: dict[str, Any] = {"feature_set": "meters", "horizon": HORIZON, "series": None}
        request.update(change)
        with pytest.raises(InvalidRequest) as raised:
            check(
                store,
                artifact.metadata,
                request["feature_set"],
                request["horizon"],
                request["series"],
            )
        assert raised.value.field == field, raised.value.message
        assert words in raised.value.message
    check(store, artifact.metadata, "gappy", HORIZON, ["m0"])  # the rest of the set is fine


class RecordingStore(FeatureStore):
    """A feature store that records what is read: ``load``'s columns and start, and the
    columns read a batch at a time."""

    def __init__(self, store: FeatureStore) -> None:
        super().__init__(store.root, store.tenant_id)
        self.loads: list[tuple[list[str] | None, Any]] = []
        self.batch_columns: list[list[str]] = []

    def load(self, name: str, end: Any = None, **options: Any) -> FeatureFrame:
        columns = options.get("columns")
        self.loads.append((list(columns) if columns is not None else None, options.get("start")))
        return super().load(name, end, **options)

    def batches(self, name: str, columns: Sequence[str], **options: Any) -> Iterator[pd.DataFrame]:
        self.batch_columns.append(list(columns))
        return super().batches(name, columns, **options)


def test_a_plan_reads_key_columns_and_a_chunk_its_window_alone(
    setup: tuple[FeatureStore, ModelArtifact], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan reads no history; each chunk reads from its earliest origin less what the
    model looks back (its features' history and its intervals' recent misses), and that
    window forecasts exactly as the series' whole history does."""
    store, artifact = setup
    monkeypatch.setattr(request_checks, "SPANS_COMBINED", 1)  # the key batches' spans, combined
    recording = RecordingStore(store)
    plan = plan_forecast(recording, artifact.metadata, "long", HORIZON, None, size=2)
    assert recording.loads == []
    assert recording.batch_columns == [["meter", "timestamp", "load_kw"]]
    assert [chunk.series for chunk in plan] == [("m0", "m1"), ("m2",)]

    data = store.load("long").data
    origins = data.dropna(subset=["load_kw"]).groupby("meter")["timestamp"].max()
    spec = artifact.feature_spec
    reach = adaptation_reach(artifact.metadata) + history_needed(spec) * spec.step
    for chunk in plan:
        assert chunk.start == origins[list(chunk.series)].min() - reach
        assert chunk.start > data["timestamp"].min() + pd.Timedelta(days=28)
        window = read_chunk(recording, artifact.metadata, chunk)
        assert recording.loads[-1] == (["load_kw", "temperature_c"], chunk.start)
        assert window.data["timestamp"].min() > chunk.start
        whole = read_chunk(store, artifact.metadata, replace(chunk, start=data["timestamp"].min()))
        assert len(whole.data) == len(window.data)
        pd.testing.assert_frame_equal(
            forecast_chunk(artifact, window, HORIZON), forecast_chunk(artifact, whole, HORIZON)
        )
    # m1's origin is three days before m0's: m0 reads three more days than its forecast
    # needs, which its trim drops.
    first = plan[0]
    assert first.start == origins["m1"] - reach


def _json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.assign(timestamp=frame["timestamp"].map(pd.Timestamp.isoformat))
    rows = [{str(k): v for k, v in r.items()} for r in records.to_dict(orient="records")]
    for row in rows:
        row.update({k: None for k, v in row.items() if isinstance(v, float) and math.isnan(v)})
    return rows


def test_a_single_series_carries_its_covariates_forward_a_day(tmp_path: Path) -> None:
    store = FeatureStore(Location(str(tmp_path / "features")))
    data = load_series(seed=3, hours=24 * 35).drop(columns=["humidity_pct"])
    store.put("one", data, timestamp_column="timestamp", target_column="load_kw")
    context = JobContext(
        job_id="job-2",
        tenant_id="tenant-a",
        model_type=ModelType.FORECAST,
        model_name="one",
        config=TrainingConfig(
            feature_set="one",
            target_variable="load_kw",
            horizon=HORIZON,
            hyperparameters={"n_estimators": 20, "learning_rate": 0.1},
        ),
    )
    settings = PipelineSettings(features_dir=str(store.root), artifacts_dir=str(tmp_path / "a"))
    saved, _ = run_in_process(context, settings)
    artifact = load_artifact(Location(saved.artifact_uri))
    with pytest.raises(InvalidRequest) as raised:
        load_history(store, artifact.metadata, "one", HORIZON, ["m0"])
    assert raised.value.field == "series"

    table = forecast_chunk(artifact, load_history(store, artifact.metadata, "one", 6, None), 6)
    assert table["series"].isna().all()
    # The same as predicting rows whose temperature is the last day's at the same hours.
    last_day = data.tail(24).head(6)
    future = last_day.assign(timestamp=last_day["timestamp"] + pd.Timedelta(days=1), load_kw=np.nan)
    rows = pd.concat([data.tail(history_needed(artifact.feature_spec)), future])
    served = predict_rows(artifact, _json(rows)).rows[-6:]
    assert [p.timestamp for p in served] == list(table["timestamp"])
    np.testing.assert_allclose([p.predicted for p in served], table["predicted"])


def test_a_plan_reads_the_version_it_was_given(setup: tuple[FeatureStore, ModelArtifact]) -> None:
    """The runner pins the version current when a forecast starts: a newer one published
    meanwhile is not what the forecast's tasks read."""
    store, artifact = setup
    put = {"timestamp_column": "timestamp", "target_column": "load_kw", "series_column": "meter"}
    first = store.put("pinned", meters(), **put).pinned_version
    newer = meters(days=36)
    second = store.put("pinned", newer, **put).pinned_version
    pinned = plan_forecast(store, artifact.metadata, "pinned", HORIZON, None, version=first)
    current = plan_forecast(store, artifact.metadata, "pinned", HORIZON, None)
    assert {c.version for c in pinned} == {first}
    assert {c.version for c in current} == {second}
    assert max(c.end for c in current) > max(c.end for c in pinned), "the newer rows"
