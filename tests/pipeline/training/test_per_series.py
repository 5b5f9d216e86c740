"""One model per series without Ray: rows routed to their series' model, in training, in
the registered artifact and in served predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from domain.errors import InvalidRequest, PipelineError
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.preprocess import preprocess
from pipeline.forecasting.batch import forecast_chunk, load_history
from pipeline.forecasting.predict import predict_rows
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import (
    METADATA_FILE,
    PREDICTIONS_FILE,
    SERIES_METRICS_FILE,
    ModelArtifact,
    load_artifact,
    series_directory,
)
from pipeline.settings import PipelineSettings
from pipeline.stages import chunks
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.training.per_series import (
    SERIES_PER_TASK,
    SeriesRouter,
    series_data,
    train_per_series,
)
from tests.pipeline.conftest import meters_store
from tests.pipeline.forecasting.test_predict import as_json_rows

QUICK = {"n_estimators": 30, "learning_rate": 0.2}


class Constant:
    """A stand-in series model forecasting one value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.value)

    def predict_quantiles(self, X: np.ndarray, point: np.ndarray) -> np.ndarray | None:
        return np.column_stack([point - 1, point + 1])


def test_the_router_sends_each_row_to_its_series_model() -> None:
    router = SeriesRouter(("a", "c"), (Constant(10.0), Constant(30.0)), codes=(0, 2), column=1)
    X = np.array([[5.0, 2.0], [6.0, 0.0], [7.0, 2.0], [8.0, 0.0]])
    np.testing.assert_array_equal(router.predict(X), [30, 10, 30, 10])
    bounds = router.predict_quantiles(X, router.predict(X))
    assert bounds is not None
    np.testing.assert_array_equal(bounds[:, 1], [31, 11, 31, 11])
    with pytest.raises(PipelineError, match="no model for the series at position 1"):
        router.predict(np.array([[5.0, 1.0]]))


def test_series_are_chunked_for_tasks() -> None:
    assert chunks([str(i) for i in range(60)], 25)[-1] == tuple(str(i) for i in range(50, 60))
    assert len(chunks([str(i) for i in range(10_000)], SERIES_PER_TASK)) == 400


def meters() -> pd.DataFrame:
    """Three hourly meters of different sizes and shapes (the last peaks at night)."""
    frames = []
    for index, scale in enumerate((1.0, 3.0, 10.0)):
        meter = load_series(seed=40 + index, hours=24 * 50).drop(columns=["humidity_pct"])
        meter["load_kw"] *= scale
        if index == 2:
            meter["load_kw"] = meter["load_kw"].to_numpy()[::-1].copy()
        frames.append(meter.assign(meter=f"m{index}"))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return meters_store(tmp_path_factory, meters())


def config(**fields: object) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {"feature_set": "meters", "target_variable": "load_kw", "hyperparameters": QUICK, **fields}
    )


def test_a_bundle_forecasts_each_series_with_its_own_model(store: FeatureStore) -> None:
    data = preprocess(store.load("meters"), config(per_series=True))
    bundle = train_per_series(data, config(per_series=True), num_threads=1)
    assert list(bundle.models) == ["m0", "m1", "m2"]
    assert data.test.series is not None
    assert data.validation.series is not None
    predicted = bundle.predict(data.test.X)
    for name, model in bundle.models.items():
        own = series_data(data, name)
        np.testing.assert_allclose(predicted[data.test.series == name], model.predict(own.test.X))
        np.testing.assert_allclose(
            bundle.validation_predictions[data.validation.series == name],
            model.validation_predictions,
        )
    bounds = bundle.predict_quantiles(data.test.X, predicted)
    assert bounds is not None
    assert bounds.shape == (len(predicted), 3)
    assert bundle.summary().validation["best_mae"] > 0


@pytest.fixture(scope="module")
def registered(store: FeatureStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = JobContext("job-1", "tenant-a", ModelType.FORECAST, "meters", config(per_series=True))
    settings = PipelineSettings(
        features_dir=str(store.root), artifacts_dir=str(tmp_path_factory.mktemp("artifacts"))
    )
    saved, reports = run_in_process(context, settings)
    assert [r.stage for r in reports][-1] == "register"
    return Path(saved.artifact_uri)


def test_the_registered_bundle_serves_each_series_from_its_subdirectory(
    store: FeatureStore, registered: Path
) -> None:
    metadata = json.loads((registered / METADATA_FILE).read_text())
    assert [(e["series"], e["directory"]) for e in metadata["per_series"]] == [
        (f"m{i}", series_directory(i)) for i in range(3)
    ]
    assert all((registered / series_directory(i) / "model.txt").is_file() for i in range(3))
    series_metrics = pd.read_parquet(registered / SERIES_METRICS_FILE)
    assert series_metrics["series"].tolist() == ["m0", "m1", "m2"]

    artifact = load_artifact(Location(str(registered)))
    raw = store.load("meters").data
    rows = raw.groupby("meter").tail(24 * 10).reset_index(drop=True)
    predictions = predict_rows(artifact, as_json_rows(rows), explain=True).rows
    evaluated = pd.read_parquet(registered / PREDICTIONS_FILE).set_index(["timestamp", "series"])
    last = [p for p in predictions if p.timestamp >= evaluated.index[-1][0] - pd.Timedelta("23h")]
    assert {p.series for p in last} == {"m0", "m1", "m2"}
    evaluated_by_key = evaluated["predicted"].to_dict()
    expected = [evaluated_by_key[(p.timestamp, p.series)] for p in last]
    np.testing.assert_allclose([p.predicted for p in last], expected)
    for p in last:
        assert p.quantiles is not None
        assert p.explanation is not None
        total = p.explanation.expected_value + sum(p.explanation.contributions.values())
        assert total == pytest.approx(p.predicted, rel=1e-9)

    # The bundle's forecasts for m1 are m1's own model's, served as a model of its own.
    own = {
        (p.timestamp, p.series): p.predicted
        for p in predict_rows(alone(artifact, 1), as_json_rows(rows[rows["meter"] == "m1"])).rows
    }
    served = {(p.timestamp, p.series): p.predicted for p in predictions if p.series == "m1"}
    assert own
    assert served == own


def test_a_series_without_a_model_is_refused_naming_the_row(
    store: FeatureStore, registered: Path
) -> None:
    artifact = load_artifact(Location(str(registered)))
    rows = store.load("meters").data.query("meter == 'm0'").tail(24 * 10).assign(meter="m7")
    with pytest.raises(InvalidRequest) as refused:
        predict_rows(artifact, as_json_rows(rows.reset_index(drop=True)))
    assert refused.value.field == "rows.0.meter"


@pytest.mark.parametrize(
    ("fields", "hint"),
    [
        ({"enable_hpo": True}, "enable_hpo"),
        ({"backtest": {"windows": 2}}, "backtest"),
        ({"distributed": {"workers": 2}}, "distributed"),
    ],
)
def test_a_config_refuses_per_series_with_what_it_does_not_support(
    fields: dict[str, object], hint: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        config(per_series=True, **fields)
    error = refused.value.errors()[0]
    assert error["loc"] == ("per_series",)
    assert hint in error["msg"]


def alone(artifact: ModelArtifact, index: int) -> ModelArtifact:
    """A per-series artifact's ``index``-th series model, as a model of its own."""
    assert artifact.per_series is not None
    part = artifact.per_series.parts[index]
    calibration = part.calibration.as_dict() if part.calibration else None
    metadata = {**artifact.metadata, "per_series": None, "quantile_calibration": calibration}
    return ModelArtifact(part.members, artifact.scaler, metadata, part.quantile_members)


def test_a_batch_forecast_routes_each_series_to_its_model(
    store: FeatureStore, registered: Path
) -> None:
    artifact = load_artifact(Location(str(registered)))
    history = load_history(store, artifact.metadata, "meters", 24, None)
    table = forecast_chunk(artifact, history, 24)
    assert table.groupby("series").size().to_dict() == {"m0": 24, "m1": 24, "m2": 24}
    for index, name in enumerate(["m0", "m1", "m2"]):
        own = forecast_chunk(
            alone(artifact, index), load_history(store, artifact.metadata, "meters", 24, [name]), 24
        )
        mine = table[table["series"] == name].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, own)


def test_a_series_that_stopped_before_the_start_date_is_not_one_of_the_models(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A meter retired in the set's first days, and a job starting after them: its rows
    had made it a series the per-series job had to fit, and the job failed on it."""
    frame = meters()
    first = frame["timestamp"].min()
    retired = (frame["meter"] == "m2") & (frame["timestamp"] >= first + pd.Timedelta(days=5))
    store = meters_store(tmp_path_factory, frame[~retired].reset_index(drop=True))
    start = (first + pd.Timedelta(days=10)).isoformat()
    context = JobContext(
        "job-1", "tenant-a", ModelType.FORECAST, "meters", config(per_series=True, start_date=start)
    )
    settings = PipelineSettings(
        features_dir=str(store.root), artifacts_dir=str(tmp_path_factory.mktemp("artifacts"))
    )
    saved, _ = run_in_process(context, settings)
    artifact = load_artifact(Location(saved.artifact_uri))
    assert sorted(e["series"] for e in artifact.metadata["per_series"]) == ["m0", "m1"]
    # The data-parallel path reads the set's keys alone, and agrees.
    keys = store.keys("meters", pd.Timestamp(start).to_pydatetime())
    assert keys.series == ("m0", "m1")
    assert store.keys("meters").series == ("m0", "m1", "m2")
