"""Serving predictions from raw rows equals what the pipeline computed at evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from domain.errors import InvalidRequest
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.forecasting.batch import adaptation_reach
from pipeline.forecasting.predict import Prediction, history_needed, predict_rows
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import PREDICTIONS_FILE, ModelArtifact, load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

#: Test rows to serve, plus the history their lags need.
SERVED = 48
#: A small model of the default shape: the blend of two members and the P10-P90 boosters.
SMALL = {"n_estimators": 50, "learning_rate": 0.2}


def trained(store: FeatureStore, root: Path, feature_set: str, model_type: ModelType) -> Path:
    context = JobContext(
        job_id="job-1",
        tenant_id="tenant-a",
        model_type=model_type,
        model_name=feature_set,
        config=TrainingConfig(
            feature_set=feature_set, target_variable="load_kw", hyperparameters=SMALL
        ),
    )
    settings = PipelineSettings(features_dir=str(store.root), artifacts_dir=str(root))
    saved, _ = run_in_process(context, settings)
    return Path(saved.artifact_uri)


@pytest.fixture(scope="module")
def forecast_model(demo_store: FeatureStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("artifacts")
    return trained(demo_store, root, "forecast_basic", ModelType.FORECAST)


def raw_rows(
    store: FeatureStore, feature_set: str, artifact: ModelArtifact, recent: bool = False
) -> pd.DataFrame:
    """The raw tail of a feature set: the rows to serve and the history before them (with
    ``recent``: also the forecasts whose misses rescale their intervals)."""
    spec = artifact.feature_spec
    need = history_needed(spec)
    if recent:
        need += round(adaptation_reach(artifact.metadata) / spec.step)
    data = store.load(feature_set).data.drop(columns=["is_anomaly"], errors="ignore")
    return data.tail(need + SERVED).reset_index(drop=True)


def as_json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.assign(
        timestamp=frame["timestamp"].map(
            lambda t: t.isoformat() if isinstance(t, pd.Timestamp) else t
        )
    ).to_dict(orient="records")
    rows = [{str(k): v for k, v in record.items()} for record in records]
    for row in rows:
        row.update({k: None for k, v in row.items() if isinstance(v, float) and math.isnan(v)})
    return rows


def test_predictions_equal_the_evaluated_test_predictions(
    demo_store: FeatureStore, forecast_model: Path
) -> None:
    artifact = load_artifact(Location(str(forecast_model)))
    rows = raw_rows(demo_store, "forecast_basic", artifact)
    predictions = predict_rows(artifact, as_json_rows(rows)).rows
    # Every row past the warm-up (a week) is predicted; the last SERVED have all their
    # history, last year's values included.
    assert len(predictions) == len(rows) - 7 * 24
    predictions = predictions[-SERVED:]
    evaluated = pd.read_parquet(forecast_model / PREDICTIONS_FILE).set_index("timestamp")
    expected = evaluated.loc[[p.timestamp for p in predictions]]
    np.testing.assert_allclose([p.predicted for p in predictions], expected["predicted"])
    assert [p.actual for p in predictions] == pytest.approx(expected["actual"].tolist())


def test_future_rows_are_forecast_from_history_alone(
    demo_store: FeatureStore, forecast_model: Path
) -> None:
    artifact = load_artifact(Location(str(forecast_model)))
    rows = raw_rows(demo_store, "forecast_basic", artifact)
    known = predict_rows(artifact, as_json_rows(rows)).rows
    future = rows.copy()
    future.loc[future.index[-12:], "load_kw"] = np.nan
    forecast = predict_rows(artifact, as_json_rows(future)).rows
    assert [p.timestamp for p in forecast] == [p.timestamp for p in known]
    assert all(p.actual is None for p in forecast[-12:])
    np.testing.assert_allclose([p.predicted for p in forecast], [p.predicted for p in known])


def test_anomaly_flags_equal_the_evaluated_ones(demo_store: FeatureStore, tmp_path: Path) -> None:
    directory = trained(demo_store, tmp_path, "anomaly_basic", ModelType.ANOMALY)
    artifact = load_artifact(Location(str(directory)))
    predictions = predict_rows(
        artifact, as_json_rows(raw_rows(demo_store, "anomaly_basic", artifact))
    ).rows[-SERVED:]
    evaluated = pd.read_parquet(directory / PREDICTIONS_FILE).set_index("timestamp")
    expected = evaluated.loc[[p.timestamp for p in predictions]]
    assert [p.anomaly for p in predictions] == expected["anomaly"].tolist()
    # Evaluated, the trailing scale of the test part's first week read the validation
    # part's out-of-sample residuals; served, the model was refitted on them, so they are
    # left out and the calibration's own scale stands in: the scores differ by a few %.
    np.testing.assert_allclose(
        [p.anomaly_score or 0.0 for p in predictions], expected["anomaly_score"], rtol=0.05
    )


def _at(row: int, column: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A damage: ``value`` written into one row's ``column``."""

    def damage(rows: pd.DataFrame) -> pd.DataFrame:
        damaged = rows.astype({column: object})
        damaged.loc[damaged.index[row], column] = value
        return damaged

    return damage


@pytest.mark.parametrize(
    ("damage", "field", "reason"),
    [
        (lambda r: r.drop(columns=["temperature_c"]), "rows", "missing columns"),
        (lambda r: r.assign(extra=1.0), "rows", "unknown columns"),
        (
            lambda r: r.assign(load_kw=r["load_kw"].where(r.index != 7)),
            "rows.7.load_kw",
            "inside the history",
        ),
        (lambda r: r.drop(index=9), "rows.9.timestamp", "step evenly"),
        (lambda r: r.tail(7 * 24), "rows", "missing history for the lags"),
        (lambda r: r.assign(timestamp="yesterday"), "rows.timestamp", "bad timestamp"),
        # Values JSON can carry that had been 500s or silently read as something else:
        (_at(4, "load_kw", 10**400), "rows.load_kw", "must be numeric"),
        (_at(4, "temperature_c", 10**400), "rows.temperature_c", "must be numeric"),
        (
            lambda r: r.assign(  # the same times three centuries on, as JSON writes them
                timestamp=r["timestamp"].map(lambda t: f"{t.year + 300}{t.isoformat()[4:]}")
            ),
            "rows.timestamp",
            "from 1677 to 2262",
        ),
        (_at(6, "load_kw", True), "rows.6.load_kw", "not true or false"),
    ],
)
def test_bad_rows_are_refused_with_the_reason(
    demo_store: FeatureStore, forecast_model: Path, damage: Any, field: str, reason: str
) -> None:
    artifact = load_artifact(Location(str(forecast_model)))
    rows = damage(raw_rows(demo_store, "forecast_basic", artifact))
    with pytest.raises(InvalidRequest, match=reason) as caught:
        predict_rows(artifact, as_json_rows(rows))
    assert caught.value.field == field


def test_a_missing_covariate_is_served_as_training_took_it(
    demo_store: FeatureStore, forecast_model: Path
) -> None:
    """Training keeps a covariate's gaps missing, and batch forecasts serve them: a request
    with one (null, or an empty string) had been refused, so a model of a set with a
    gappy sensor could not be served over any gap."""
    artifact = load_artifact(Location(str(forecast_model)))
    rows = raw_rows(demo_store, "forecast_basic", artifact).astype({"temperature_c": object})
    gaps = rows.index[-30:-28]
    rows.loc[gaps, "temperature_c"] = [None, ""]
    served = {p.timestamp: p for p in predict_rows(artifact, as_json_rows(rows)).rows}
    for stamp in rows.loc[gaps, "timestamp"]:
        assert math.isfinite(served[pd.Timestamp(stamp)].predicted)


def test_served_quantiles_equal_the_evaluated_ones_and_explanations_add_up(
    demo_store: FeatureStore, forecast_model: Path
) -> None:
    artifact = load_artifact(Location(str(forecast_model)))
    rows = raw_rows(demo_store, "forecast_basic", artifact, recent=True)
    predictions = predict_rows(artifact, as_json_rows(rows), explain=True).rows[-SERVED:]
    evaluated = pd.read_parquet(forecast_model / PREDICTIONS_FILE).set_index("timestamp")
    expected = evaluated.loc[[p.timestamp for p in predictions]]
    for key in ("0.1", "0.5", "0.9"):
        served = [p.quantiles[key] for p in predictions if p.quantiles]
        np.testing.assert_allclose(served, expected[f"q{key}"], rtol=1e-9)
    assert all(p.quantiles and p.quantiles["0.1"] < p.quantiles["0.9"] for p in predictions)
    features = artifact.metadata["features"]
    for p in predictions:
        assert p.explanation is not None
        assert list(p.explanation.contributions) == features
        total = p.explanation.expected_value + sum(p.explanation.contributions.values())
        assert total == pytest.approx(p.predicted, rel=1e-9)
    # The explanation is not trivial: the daily lag and the time of day carry weight.
    first = predictions[0].explanation
    assert first is not None
    assert abs(first.contributions["lag_24"]) > 0
    assert all(
        p.explanation is None
        for p in predict_rows(
            artifact, as_json_rows(raw_rows(demo_store, "forecast_basic", artifact))
        ).rows
    )


def test_intervals_follow_the_misses_of_the_requests_own_history(
    demo_store: FeatureStore, forecast_model: Path
) -> None:
    artifact = load_artifact(Location(str(forecast_model)))
    rows = as_json_rows(raw_rows(demo_store, "forecast_basic", artifact, recent=True))
    adapted = predict_rows(artifact, rows).rows[-SERVED:]
    # A model registered before intervals adapted serves them as calibrated.
    metadata = {k: v for k, v in artifact.metadata.items() if k != "interval_adaptation"}
    static = predict_rows(replace(artifact, metadata=metadata), rows).rows[-SERVED:]
    assert [p.predicted for p in adapted] == [p.predicted for p in static]

    def widths(predictions: list[Prediction]) -> np.ndarray:
        return np.array(
            [p.quantiles["0.9"] - p.quantiles["0.1"] for p in predictions if p.quantiles]
        )

    assert len(widths(adapted)) == len(widths(static)) == SERVED
    ratio = widths(adapted) / widths(static)
    assert not np.allclose(ratio, 1.0)
    # One factor per day-ahead origin's window: rows an hour apart share almost all of it.
    assert np.abs(np.diff(np.log(ratio))).max() < 0.05
    # A request whose history reaches fewer of the recent forecasts rescales by fewer.
    short = predict_rows(artifact, rows[-(history_needed(artifact.feature_spec) + SERVED) :]).rows
    assert not np.allclose(widths(short[-SERVED:]), widths(adapted))


def test_rows_beyond_the_horizon_are_not_forecast(
    demo_store: FeatureStore, forecast_model: Path
) -> None:
    """Past one horizon after the last known target, even the nearest lag is unknown."""
    artifact = load_artifact(Location(str(forecast_model)))
    rows = raw_rows(demo_store, "forecast_basic", artifact)
    future = rows.copy()
    future.loc[future.index[-40:], "load_kw"] = np.nan
    forecast = predict_rows(artifact, as_json_rows(future)).rows
    last_known = future["timestamp"].iloc[-41]
    assert forecast[-1].timestamp == last_known + pd.Timedelta(hours=24)
    assert sum(p.actual is None for p in forecast) == 24
