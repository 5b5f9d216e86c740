"""The compare stage with real LightGBM, without Ray: the champion scored on the job's
test rows with its own artifact, and the decision the job's policy takes on that."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from domain.jobs import ModelType
from domain.names import model_id
from domain.promotions import NO_CHAMPION
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.evaluation.evaluate import Evaluation, evaluate
from pipeline.features.preprocess import PreparedFeatures, preprocess
from pipeline.forecasting.champion import compare_with_champion
from pipeline.models.artifacts import load_metadata
from pipeline.models.register import register
from pipeline.promotion import ChampionRef
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import TrainedModel, train

START = pd.Timestamp("2025-01-01", tz="UTC")
SMALL = {"n_estimators": 60, "learning_rate": 0.2}
#: Underfits: a handful of small trees.
WEAK = {"n_estimators": 4, "learning_rate": 0.2, "num_leaves": 4}


def calm_after_storm(days: int = 120) -> pd.DataFrame:
    """Hourly load with daily and weekly seasons; its noise is 20 times larger from day 60
    to day 80 than before and after."""
    rng = np.random.default_rng(7)
    stamps = pd.date_range(START, periods=24 * days, freq="h")
    day = np.arange(len(stamps)) / 24
    noise = np.where((day >= 60) & (day < 80), 20.0, 1.0) * rng.normal(0, 1, len(stamps))
    load = 100 + 30 * np.sin(2 * np.pi * day) + 10 * np.sin(2 * np.pi * day / 7) + noise
    return pd.DataFrame({"timestamp": stamps, "load_kw": load})


def meters(count: int = 3, days: int = 70) -> pd.DataFrame:
    frames = [
        load_series(seed=60 + i, hours=24 * days)
        .drop(columns=["humidity_pct"])
        .assign(meter=f"m{i}")
        for i in range(count)
    ]
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Fitted:
    context: JobContext
    data: PreparedFeatures
    model: TrainedModel
    evaluation: Evaluation


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    store = FeatureStore(Location(str(tmp_path_factory.mktemp("features"))))
    store.put("calm", calm_after_storm(), timestamp_column="timestamp", target_column="load_kw")
    store.put(
        "meters",
        meters(),
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    return store


def fit(store: FeatureStore, feature_set: str, **config: object) -> Fitted:
    context = JobContext(
        job_id="job",
        tenant_id="tenant-a",
        model_type=ModelType.FORECAST,
        model_name="m",
        config=TrainingConfig.model_validate(
            {"feature_set": feature_set, "target_variable": "load_kw", **config}
        ),
    )
    data = preprocess(store.load(feature_set, context.config.end_date), context.config)
    model = train(data, context.config, 1)
    return Fitted(context, data, model, evaluate(model, data, ModelType.FORECAST, context.config))


def registered(store: FeatureStore, root: Path, feature_set: str, **config: object) -> ChampionRef:
    """A champion trained and registered as a job does."""
    job = fit(store, feature_set, **config)
    artifacts = Location(str(root))
    saved = register(job.context, job.model, job.data, job.evaluation, None, artifacts)
    return ChampionRef(model_id("tenant-a", "m", saved.version), saved.artifact_uri)


def test_a_challenger_worse_on_the_same_rows_is_kept_though_its_own_test_mae_is_lower(
    store: FeatureStore, tmp_path: Path
) -> None:
    """The champion's test part fell in a storm, the challenger's in the calm after it:
    compared on their own test parts the weak challenger looks twice as good, compared on
    the same rows (the calm days) it is twice as bad."""
    until_storm_ends = (START + pd.Timedelta(days=80)).isoformat()
    champion = registered(
        store, tmp_path, "calm", end_date=until_storm_ends, hyperparameters=SMALL, quantiles=[]
    )
    champion_mae = _own_mae(champion)
    job = fit(store, "calm", promote_champion=True, hyperparameters=WEAK, quantiles=[])
    assert job.evaluation.metrics["mae"] < 0.7 * champion_mae  # the old rule promoted it

    comparison = compare_with_champion(
        job.context, job.data, job.evaluation, store.root, lambda: champion
    )
    assert not comparison.better
    assert comparison.champion_id == champion.model_id
    assert comparison.reason.startswith("does not beat the champion by the margin: MAE")
    evidence = comparison.evidence
    assert evidence["challenger_score"] == pytest.approx(job.evaluation.metrics["mae"])
    assert evidence["champion_score"] < 0.7 * evidence["challenger_score"]
    window = evidence["window"]
    assert window["rows"] == window["test_rows"] == len(job.data.test.y)
    assert window["start"] == pd.Timestamp(job.data.test.timestamps[0], tz="UTC").isoformat()
    assert window["window_length"] == "P1D"
    days = evidence["windows"]
    assert len(days) == evidence["paired_test"]["windows"] == 12
    assert all(day["challenger"] > day["champion"] for day in days)
    assert evidence["paired_test"]["p_value"] == 1.0  # no day favours the challenger


def test_the_champion_scored_on_its_own_test_rows_is_its_evaluation(
    store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A challenger with the champion's data scores it on the champion's own test part:
    the champion's forecasts there, its quantiles rescaled as served, are those its
    evaluation made (a multi-series set: rows matched by series and time, its three
    series read and forecast two at a time)."""
    monkeypatch.setattr("pipeline.forecasting.champion.CHUNK_SERIES", 2)
    config = {"hyperparameters": SMALL, "quantiles": [0.1, 0.5, 0.9]}
    champion = registered(store, tmp_path, "meters", **config)
    job = fit(store, "meters", promote_champion=True, promotion={"metric": "wql"}, **config)
    comparison = compare_with_champion(
        job.context, job.data, job.evaluation, store.root, lambda: champion
    )
    evidence = comparison.evidence
    own = _metadata(champion)["metrics"]
    assert evidence["metric"] == "wql"
    assert evidence["champion_score"] == pytest.approx(own["wql"], rel=1e-9)
    assert evidence["challenger_score"] == pytest.approx(job.evaluation.metrics["wql"])
    # The same model trained twice on the same rows: neither beats the other.
    assert evidence["challenger_score"] == pytest.approx(evidence["champion_score"])
    assert not comparison.better

    by_coverage = fit(
        store, "meters", promote_champion=True, promotion={"metric": "coverage_error"}, **config
    )
    covered = compare_with_champion(
        by_coverage.context, by_coverage.data, by_coverage.evaluation, store.root, lambda: champion
    )
    assert covered.evidence["champion_score"] == pytest.approx(abs(own["coverage_80"] - 0.8))


def test_only_rows_after_the_champion_fitted_its_data_are_compared(
    store: FeatureStore, tmp_path: Path
) -> None:
    end = (START + pd.Timedelta(days=100)).isoformat()
    champion = registered(store, tmp_path, "calm", end_date=end, hyperparameters=SMALL)
    since = pd.Timestamp(_metadata(champion)["lineage"]["test_start"])

    overlapping = fit(store, "calm", promote_champion=True, hyperparameters=SMALL, test_split=0.3)
    assert pd.Timestamp(overlapping.data.test.timestamps[0], tz="UTC") < since
    comparison = compare_with_champion(
        overlapping.context, overlapping.data, overlapping.evaluation, store.root, lambda: champion
    )
    window = comparison.evidence["window"]
    assert pd.Timestamp(window["start"]) == since
    assert window["rows"] < window["test_rows"]

    before = (START + pd.Timedelta(days=90)).isoformat()
    earlier = fit(store, "calm", promote_champion=True, end_date=before, hyperparameters=SMALL)
    nothing = compare_with_champion(
        earlier.context, earlier.data, earlier.evaluation, store.root, lambda: champion
    )
    assert not nothing.better
    assert nothing.reason.startswith("no common period: the champion was fitted on data up to")
    assert nothing.evidence["not_compared"] == nothing.reason


def test_no_champion_promotes_and_another_horizon_keeps_it(
    store: FeatureStore, tmp_path: Path
) -> None:
    job = fit(store, "calm", promote_champion=True, hyperparameters=SMALL, quantiles=[])
    alone = compare_with_champion(job.context, job.data, job.evaluation, store.root, None)
    assert (alone.champion_id, alone.better, alone.reason) == (None, True, NO_CHAMPION)

    champion = registered(store, tmp_path, "calm", horizon=12, hyperparameters=SMALL)
    other = compare_with_champion(
        job.context, job.data, job.evaluation, store.root, lambda: champion
    )
    assert not other.better
    assert other.reason.startswith("the champion forecasts 12 steps ahead and this model 24")


def _metadata(champion: ChampionRef) -> dict[str, Any]:
    return load_metadata(Location(champion.artifact_uri))


def _own_mae(champion: ChampionRef) -> float:
    return float(_metadata(champion)["metrics"]["mae"])
