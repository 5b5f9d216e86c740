"""Train, evaluate and register with real LightGBM on the demo sets, without Ray."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from domain.errors import TrainingStopped
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.preprocess import preprocess
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import METADATA_FILE, PREDICTIONS_FILE, load_artifact
from pipeline.models.register import register
from pipeline.settings import PipelineSettings
from pipeline.stages import Stage, StageFailed, run_stage
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from pipeline.summaries import TrainSummary
from pipeline.training.train import train

#: A small explicit model, for the tests that are not about the defaults.
SMALL = {"hyperparameters": {"n_estimators": 60, "learning_rate": 0.2}, "quantiles": []}


def context(feature_set: str, model_type: ModelType, **config: object) -> JobContext:
    return JobContext(
        job_id="job-1",
        tenant_id="tenant-a",
        model_type=model_type,
        model_name="m",
        config=TrainingConfig.model_validate(
            {"feature_set": feature_set, "target_variable": "load_kw", **config}
        ),
    )


@pytest.fixture
def settings(demo_store: FeatureStore, tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(
        features_dir=str(demo_store.root), artifacts_dir=str(tmp_path / "artifacts")
    )


@pytest.mark.slow  # the defaults: two members of up to 300 rounds, each refitted
def test_forecast_pipeline_beats_the_seasonal_naive_baseline(settings: PipelineSettings) -> None:
    saved, reports = run_in_process(context("forecast_basic", ModelType.FORECAST), settings)
    assert [r.stage for r in reports] == [
        "load_features",
        "preprocess",
        "train",
        "evaluate",
        "register",
    ]
    assert [r.progress for r in reports] == [0.2, 0.4, 0.7, 0.85, 1.0]
    metrics = saved.metrics
    assert metrics["mae"] < 0.5 * metrics["naive_mae"]
    assert metrics["mase"] < 1
    assert metrics["r2"] > 0.9
    assert metrics["rmse"] >= metrics["mae"]
    assert 0 < metrics["mape"] < 10
    train_report = reports[2]
    assert any("best iteration" in line.message for line in train_report.logs)
    summary = train_report.summary
    assert isinstance(summary, TrainSummary)
    # Early stopping ran each member 50 rounds past its best, within the 300-round ceiling.
    assert summary.params["num_iterations"] == 300
    assert len(summary.curve["l1"]) == min(summary.best_iteration + 50, 300)
    assert set(summary.curve) == {"l1", "l2", "median_l1", "median_l2"}
    assert summary.params["objective"] == ["regression", "regression_l1"]
    # Conformal quantiles, spread by time of day: no quantile booster, honest coverage.
    assert any("conformal quantiles" in line.message for line in train_report.logs)
    assert 0.7 <= metrics["coverage_80"] <= 0.9
    artifact = load_artifact(Location(saved.artifact_uri))
    assert artifact.quantile_members == ()
    assert artifact.calibration is not None
    assert [f.feature for f in artifact.calibration.spread.factors] == [
        artifact.metadata["features"].index("time_of_day")
    ]


def test_anomaly_pipeline_finds_the_injected_anomalies(settings: PipelineSettings) -> None:
    saved, reports = run_in_process(context("anomaly_basic", ModelType.ANOMALY, **SMALL), settings)
    preprocessed = [line.message for line in reports[1].logs]
    assert any("labelled as anomalies: scored, not fitted on" in m for m in preprocessed)
    evaluated = [line.message for line in reports[3].logs]
    assert any("0.5 alarms a week per series, this cadence's default" in m for m in evaluated)
    metrics = saved.metrics
    # The demo set hides an anomaly every ~4 days, labelled. The model is fitted and its
    # tail calibrated without the labelled rows (with them, a fifth of its validation
    # residuals' tail was incidents, and recall was 0.61): nearly all are found.
    assert metrics["event_precision"] > 0.8
    assert metrics["event_recall"] > 0.8
    assert metrics["false_alarms_per_week"] <= 1
    assert 0 < metrics["nab_score"] <= 100
    table = pd.read_parquet(Path(saved.artifact_uri) / PREDICTIONS_FILE)
    assert table["anomaly"].any()
    detector = load_artifact(Location(saved.artifact_uri)).metadata["anomaly_detector"]
    assert detector["calibration"]["alarms_per_week"] == 0.5
    # A row over the threshold is flagged, unless it is an echo: within the suppression
    # (in steps, an hour each here) after a flagged row.
    over = table["anomaly_score"] > detector["threshold"]
    flagged = table.loc[table["anomaly"], "timestamp"]
    assert flagged.isin(table.loc[over, "timestamp"]).any()
    for stamp in table.loc[over & ~table["anomaly"], "timestamp"]:
        since = (stamp - flagged[flagged < stamp].max()) / pd.Timedelta(hours=1)
        assert 0 < since <= detector["suppress"], stamp


def test_early_stopping_and_hyperparameters_take_effect(demo_store: FeatureStore) -> None:
    frame = demo_store.load("forecast_basic")
    cfg = TrainingConfig.model_validate(
        {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "hyperparameters": {"n_estimators": 2000, "learning_rate": 0.3, "num_leaves": 7},
            "early_stopping_rounds": 5,
        }
    )
    model = train(preprocess(frame, cfg), cfg, num_threads=1)
    assert model.params["num_leaves"] == 7
    assert model.params["num_iterations"] == 2000
    assert model.best_iteration < 2000
    assert len(model.curve["l1"]) == model.best_iteration + 5
    # Refitted on train + validation with early stopping's rounds, grown with the rows.
    data = preprocess(frame, cfg)
    rows = len(data.train.y) + len(data.validation.y)
    mean = model.members[0]
    assert mean.objective == "regression"
    assert mean.rounds == -(-model.best_iteration * rows // len(data.train.y))
    assert mean.booster.num_trees() == mean.rounds


def test_a_time_budget_stops_each_fit_at_its_share(
    demo_store: FeatureStore, caplog: pytest.LogCaptureFixture
) -> None:
    frame = demo_store.load("forecast_basic")
    fields = {
        "feature_set": "forecast_basic",
        "target_variable": "load_kw",
        "hyperparameters": {"n_estimators": 5000, "learning_rate": 0.01},
    }
    cfg = TrainingConfig.model_validate({**fields, "time_budget_s": 2.0})
    data = preprocess(frame, cfg)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="pipeline"):
        model = train(data, cfg, num_threads=1)
    seconds = time.monotonic() - started
    assert any("time budget 2.0 s: 2 early-stopped fit(s)" in r.message for r in caplog.records)
    assert any("time budget spent at round" in r.message for r in caplog.records)
    # At rate 0.01 early stopping would run thousands of rounds; the budget cut them short,
    # and each member kept its best round so far.
    assert model.best_iteration < 5000
    assert len(model.curve["l1"]) < 5000
    assert model.curve["l1"][model.best_iteration - 1] == min(model.curve["l1"])
    assert seconds < 2.0 * 3  # the shares are estimates; the stage stays near its budget


def test_artifact_round_trip_and_unique_versions(
    settings: PipelineSettings, demo_store: FeatureStore
) -> None:
    ctx = context("forecast_basic", ModelType.FORECAST, **SMALL)
    saved, _ = run_in_process(ctx, settings)
    directory = Path(saved.artifact_uri)
    artifact = load_artifact(Location(str(directory)))
    assert artifact.metadata["features"] == saved.features
    assert artifact.metadata["lineage"]["feature_set"] == "forecast_basic"
    assert (directory / METADATA_FILE).is_file()
    frame = demo_store.load("forecast_basic")
    data = preprocess(frame, ctx.config)
    raw_test = data.scaler.inverse_transform(data.test.X)
    recorded = pd.read_parquet(directory / PREDICTIONS_FILE)["predicted"].to_numpy()
    np.testing.assert_allclose(artifact.predict(raw_test), recorded, rtol=1e-9)

    moment = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    model = train(data, ctx.config, 1)
    from pipeline.evaluation.evaluate import evaluate

    evaluation = evaluate(model, data, ModelType.FORECAST, ctx.config)
    versions = [
        register(ctx, model, data, evaluation, None, settings.artifacts_root, now=moment).version
        for _ in range(3)
    ]
    assert versions == ["20260101.120000", "20260101.120001", "20260101.120002"]


def test_a_failing_stage_carries_its_logs_and_traceback() -> None:
    def broken() -> None:
        import logging

        logging.getLogger("pipeline.test").info("about to fail")
        raise ValueError("bad data")

    with pytest.raises(StageFailed) as caught:
        run_stage(Stage.PREPROCESS, broken)
    error = caught.value
    assert error.message == "preprocess failed: ValueError: bad data"
    assert [line.message for line in error.logs] == ["about to fail"]
    assert "Traceback" in error.trace
    import pickle

    assert pickle.loads(pickle.dumps(error)).logs == error.logs


def test_training_stops_when_its_job_is_cancelled(
    demo_store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The train stage asks whether to stop (here after every round) and stops at once when
    told."""
    config = TrainingConfig.model_validate(
        {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "hyperparameters": {"n_estimators": 100_000},
            "early_stopping_rounds": 0,
        }
    )
    data = preprocess(demo_store.load("forecast_basic"), config)
    asked: list[int] = []

    def cancelled_after_two_checks() -> bool:
        asked.append(1)
        return len(asked) >= 2

    monkeypatch.setattr("pipeline.training.callbacks.CANCEL_CHECK_SECONDS", 0.0)
    with pytest.raises(TrainingStopped, match="round 2:"):
        train(data, config, 1, should_stop=cancelled_after_two_checks)
    assert len(asked) == 2


def test_an_alarm_score_overrides_the_rate_and_the_old_robust_z_is_ignored(
    settings: PipelineSettings,
) -> None:
    # Jobs and policies stored before the calibration hold the old robust z: they load.
    stored = context("anomaly_basic", ModelType.ANOMALY, anomaly_threshold=4.0, **SMALL)
    saved, _ = run_in_process(stored, settings)
    rate_set = load_artifact(Location(saved.artifact_uri)).metadata["anomaly_detector"]
    assert rate_set["threshold"] == rate_set["calibration"]["threshold"] != 4.0
    chosen = context("anomaly_basic", ModelType.ANOMALY, alarm_score=5.0, **SMALL)
    saved, _ = run_in_process(chosen, settings)
    assert (
        load_artifact(Location(saved.artifact_uri)).metadata["anomaly_detector"]["threshold"] == 5.0
    )
