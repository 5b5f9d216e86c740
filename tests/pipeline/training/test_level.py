"""A target relative to the series' level: kept where it validates better, and added back
wherever the model forecasts (evaluation, the artifact and its explanations, a final
refit, backtest windows). Real LightGBM, in process."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.evaluation.backtest import Recipe, all_rows, plan, run_window
from pipeline.features.preprocess import PreparedData, preprocess
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from pipeline.training import level as level_module
from pipeline.training.level import Level, level_of, relative_to
from pipeline.training.train import train

START = pd.Timestamp("2020-01-06", tz="UTC")
SMALL = {"n_estimators": 60, "learning_rate": 0.2}
CONFIG = TrainingConfig(feature_set="trend", target_variable="y", horizon=7, hyperparameters=SMALL)


def trending(days: int = 3 * 365) -> pd.DataFrame:
    """Daily values that climb through the record, with a weekly shape and noise: every
    test value is above those the model trains on."""
    rng = np.random.default_rng(11)
    day = np.arange(days)
    y = 100 + 0.2 * day + 5 * np.sin(2 * np.pi * day / 7) + rng.normal(0, 1, days)
    return pd.DataFrame({"timestamp": pd.date_range(START, periods=days, freq="D"), "y": y})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    store = FeatureStore(Location(str(tmp_path_factory.mktemp("features"))))
    store.put("trend", trending(), timestamp_column="timestamp", target_column="y")
    return store


@pytest.fixture(scope="module")
def data(store: FeatureStore) -> PreparedData:
    return preprocess(store.load("trend"), CONFIG)


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - actual)))


def test_the_level_is_the_shortest_rolling_mean_and_the_target_moves_by_it(
    data: PreparedData,
) -> None:
    level = level_of(data)
    assert level is not None
    assert level.feature == "roll_mean_7"
    raw = data.scaler.inverse_transform(data.test.X)[:, level.column]
    np.testing.assert_allclose(level.of(data.test.X), raw)
    shifted = relative_to(data, level)
    np.testing.assert_allclose(shifted.test.y, data.test.y - raw)
    assert Level.from_dict(level.as_dict()) == level
    missing = data.test.X[:1].copy()
    missing[0, level.column] = np.nan
    assert level.of(missing)[0] == level.fallback == pytest.approx(np.mean(data.train.y))


@pytest.mark.parametrize("objective", ["poisson", "gamma", "tweedie"])
def test_objectives_of_nonnegative_targets_keep_the_target_itself(
    data: PreparedData, objective: str
) -> None:
    """Relative to its level a target is negative where the series is below it, and
    LightGBM refuses a negative label with these objectives."""
    config = CONFIG.model_copy(update={"hyperparameters": {**SMALL, "objective": objective}})
    model = train(data, config, 1)
    assert model.level is None
    assert np.all(np.isfinite(model.predict(data.test.X)))


def test_a_trending_series_is_forecast_relative_to_its_level(
    data: PreparedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = train(data, CONFIG, 1)
    assert model.level is not None
    point = model.predict(data.test.X)
    # the validation forecasts are of the target itself, as the anomaly threshold reads them
    assert mae(model.validation_predictions, data.validation.y) == pytest.approx(
        model.validation_scores["best_mae"]
    )
    bounds = model.predict_quantiles(data.test.X, point)
    assert bounds is not None
    covered = np.mean((data.test.y >= bounds[:, 0]) & (data.test.y <= bounds[:, -1]))

    monkeypatch.setattr(level_module, "MAX_ROWS", 0)  # no trial: the absolute target
    absolute = train(data, CONFIG, 1)
    assert absolute.level is None
    assert "target_relative_to" not in absolute.params
    flat = absolute.predict(data.test.X)
    assert mae(point, data.test.y) < 0.3 * mae(flat, data.test.y)
    assert flat.max() < data.test.y.mean()  # trees stay below the values they never saw
    assert covered > 0.6


def test_a_job_with_a_time_budget_keeps_the_absolute_target(data: PreparedData) -> None:
    """The trial's fits are not in the budget's plan."""
    budgeted = CONFIG.model_copy(update={"time_budget_s": 60.0})
    assert level_of(data) is not None
    assert train(data, budgeted, 1).level is None


def test_sub_daily_data_keeps_the_absolute_target(demo_store: FeatureStore) -> None:
    """A day's mean would carry a holiday's dip into the next day: not tried."""
    config = TrainingConfig(
        feature_set="forecast_basic", target_variable="load_kw", hyperparameters=SMALL
    )
    data = preprocess(demo_store.load("forecast_basic"), config)
    assert "roll_mean_24" in data.feature_names
    assert level_of(data) is None
    assert train(data, config, 1).level is None


def test_the_registered_model_adds_its_level_back_before_and_after_a_final_refit(
    store: FeatureStore, data: PreparedData, tmp_path: Path
) -> None:
    config = CONFIG.model_copy(update={"refit_on_all_rows": True})
    context = JobContext("job", "tenant-a", ModelType.FORECAST, "trend", config)
    settings = PipelineSettings(features_dir=str(store.root), artifacts_dir=str(tmp_path))
    saved, _ = run_in_process(context, settings)
    served = load_artifact(Location(saved.artifact_uri))
    scored = load_artifact(Location(saved.artifact_uri), scored=True)
    assert served.metadata["level"]["feature"] == "roll_mean_7"
    assert saved.params["target_relative_to"] == "roll_mean_7"  # the registry row shows it

    rows = data.scaler.inverse_transform(data.test.X)  # an artifact scales its rows itself
    unseen = mae(scored.predict(rows), data.test.y)
    assert unseen == pytest.approx(served.metadata["metrics"]["mae"], rel=1e-6)
    assert mae(served.predict(rows), data.test.y) < unseen  # refitted on these rows too
    np.testing.assert_allclose(served.contributions(rows).sum(axis=1), served.predict(rows))


def test_a_backtest_window_trains_and_forecasts_relative_to_the_level(
    data: PreparedData,
) -> None:
    model = train(data, CONFIG, 1)
    recipe = Recipe.of(model)
    assert recipe.level == model.level
    window = plan(all_rows(data)[2], horizon=7, windows=1, step=7)[0]
    relative = run_window(data, recipe, window).metrics["mae"]
    absolute = run_window(data, replace(recipe, level=None), window).metrics["mae"]
    assert relative < 0.5 * absolute
