"""Backtest windows: where they fall, what they train on, and whether they fit."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from domain.errors import InvalidRequest, PipelineError
from pipeline.config import TrainingConfig
from pipeline.evaluation.backtest import MIN_TRAIN_STEPS, Recipe, check_fits, plan, run_window
from pipeline.features.preprocess import preprocess
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import train


def hours(count: int) -> np.ndarray:
    return np.datetime64("2025-01-01T00:00") + np.arange(count) * np.timedelta64(1, "h")


def test_windows_end_with_the_data_and_step_back() -> None:
    stamps = hours(1000)
    windows = plan(np.concatenate([stamps, stamps]), horizon=24, windows=3, step=48)
    assert [w.number for w in windows] == [0, 1, 2]
    assert windows[-1].origin == stamps[-24]
    assert windows[-1].end > stamps[-1]
    assert [int((b.origin - a.origin) / np.timedelta64(1, "h")) for a, b in pairwise(windows)] == [
        48,
        48,
    ]
    assert all(int((w.end - w.origin) / np.timedelta64(1, "h")) == 24 for w in windows[:-1])


def test_windows_that_leave_too_little_to_train_on_are_refused() -> None:
    with pytest.raises(PipelineError, match="to train the first one on"):
        plan(hours(MIN_TRAIN_STEPS + 24 * 3), horizon=24, windows=5, step=24)


def test_windows_start_in_the_test_part() -> None:
    stamps = hours(1000)
    windows = plan(stamps, horizon=24, windows=3, step=24, test_start=stamps[900])
    assert windows[0].origin >= stamps[900]
    refused = r"start before the test part \(100 timestamps\).*; 4 fit"
    with pytest.raises(PipelineError, match=refused):
        plan(stamps, horizon=24, windows=5, step=24, test_start=stamps[900])


def config(**overrides: object) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {"feature_set": "forecast_basic", "target_variable": "load_kw", **overrides}
    )


def test_the_check_at_submission_counts_steps_in_the_selected_range(
    demo_store: FeatureStore,
) -> None:
    schema = demo_store.schema("forecast_basic")
    check_fits(config(backtest={"windows": 30}), schema, 3600)
    with pytest.raises(InvalidRequest, match="need") as caught:
        check_fits(config(backtest={"windows": 100, "step": 240}), schema, 3600)
    assert caught.value.field == "config.backtest"
    narrow = config(backtest={"windows": 3}, start_date="2025-12-20T00:00:00Z")
    with pytest.raises(InvalidRequest, match="has 2"):
        check_fits(narrow, schema, 3600)
    recent = config(backtest={"windows": 30}, start_date="2025-06-01T00:00:00Z")
    with pytest.raises(InvalidRequest, match="more than the test part's") as caught:
        check_fits(recent, schema, 3600)
    assert caught.value.field == "config.backtest"
    check_fits(recent.model_copy(update={"test_split": 0.5}), schema, 3600)


def test_a_window_trains_on_what_precedes_its_origin(demo_store: FeatureStore) -> None:
    cfg = config(
        hyperparameters={"n_estimators": 30, "learning_rate": 0.2},
        start_date="2025-01-01T00:00:00Z",
        end_date="2025-04-01T00:00:00Z",
    )
    data = preprocess(demo_store.load("forecast_basic"), cfg)
    model = train(data, cfg, 1)
    stamps = np.concatenate(
        [data.train.timestamps, data.validation.timestamps, data.test.timestamps]
    )
    [early, late] = plan(stamps, 24, 2, 24 * 10)
    first = run_window(data, Recipe.of(model), early)
    second = run_window(data, Recipe.of(model), late)
    assert first.train_rows == int((stamps < early.origin).sum())
    assert second.train_rows - first.train_rows == 24 * 10
    assert first.test_rows == second.test_rows == 24
    for result in (first, second):
        assert 0 < result.metrics["mae"] < result.metrics["naive_mae"]
        assert 0 <= result.metrics["coverage_80"] <= 1
