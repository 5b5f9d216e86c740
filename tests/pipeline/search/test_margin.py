"""A search's best trial replaces the default parameters only when it beat them over the
validation windows by more than chance; otherwise the model gets a plain job's members."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest

from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData, preprocess
from pipeline.scoring.windows import WINDOWS, window_origins
from pipeline.search.members import (
    NUMBER,
    WINDOW_ERRORS,
    default_choices,
    default_member,
    member_choices,
    starting_points,
)
from pipeline.search.trials import distribution
from pipeline.search.window_errors import window_errors
from pipeline.store.feature_store import FeatureStore
from pipeline.training.fitting import fit

CONFIG = TrainingConfig.model_validate(
    {"feature_set": "forecast_basic", "target_variable": "load_kw", "enable_hpo": True}
)


def test_window_errors_are_the_mean_absolute_errors_of_the_validation_windows(
    demo_store: FeatureStore,
) -> None:
    data: PreparedData = preprocess(demo_store.load("forecast_basic"), CONFIG)
    model = fit(data, {"n_estimators": 30}, 0, 1)
    errors = window_errors(data, model.booster, model.best_iteration)
    assert len(errors) == WINDOWS
    stamps = data.validation.timestamps
    last = stamps >= window_origins(stamps, WINDOWS)[-1]
    predicted = model.booster.predict(data.validation.X[last], num_iteration=model.best_iteration)
    assert errors[-1] == pytest.approx(np.mean(np.abs(predicted - data.validation.y[last])))


def test_a_trial_is_not_judged_by_the_rows_labelled_as_anomalies(
    demo_store: FeatureStore,
) -> None:
    config = CONFIG.model_copy(update={"feature_set": "anomaly_basic", "horizon": 1})
    data: PreparedData = preprocess(demo_store.load("anomaly_basic"), config)
    model = fit(data, {"n_estimators": 30}, 0, 1)
    errors = window_errors(data, model.booster, model.best_iteration)
    stamps, normal = data.validation.timestamps, data.validation.normal
    last = stamps >= window_origins(stamps, WINDOWS)[-1]
    assert (last & ~normal).any()  # the demo's anomalies are labelled in every window
    kept = last & normal
    predicted = model.booster.predict(data.validation.X[kept], num_iteration=model.best_iteration)
    assert errors[-1] == pytest.approx(np.mean(np.abs(predicted - data.validation.y[kept])))


def trial(number: int, params: dict[str, Any], errors: list[float]) -> optuna.trial.FrozenTrial:
    space = CONFIG.search_space()
    return optuna.trial.create_trial(
        value=float(np.mean(errors)),
        params=params,
        distributions={name: distribution(space[name]) for name in params},
        user_attrs={NUMBER: number, "best_iteration": 50 + number, WINDOW_ERRORS: errors},
    )


def test_the_defaults_stay_unless_a_trial_beat_them_by_the_margin() -> None:
    mean_start, median_start = starting_points(CONFIG)
    complete = [
        trial(0, mean_start, [10.0, 10.0, 10.0, 10.0]),
        trial(1, median_start, [10.0, 10.0, 10.0, 10.0]),
        trial(2, {**mean_start, "num_leaves": 64}, [9.0, 11.0, 9.2, 10.4]),  # 0.85 % better
        trial(3, {**median_start, "num_leaves": 64}, [9.0, 9.1, 8.9, 9.0]),  # 10 % better
    ]
    members = member_choices(CONFIG, complete)
    assert members["regression"] == default_member(CONFIG, "regression")  # the defaults kept
    assert members["regression_l1"][1] == 53  # trial 3 won
    assert members["regression_l1"][0]["num_leaves"] == 64
    # A default trial that was its objective's best is a plain job's member too.
    best_start = [trial(0, mean_start, [8.0] * 4), *complete[1:]]
    assert member_choices(CONFIG, best_start)["regression"] == default_member(CONFIG, "regression")
    # Trials from a journal written before windows were scored keep the best trial.
    for frozen in complete:
        frozen.user_attrs.pop(WINDOW_ERRORS)
    assert member_choices(CONFIG, complete)["regression"][1] == 52


def test_an_objective_without_trials_borrows_only_parameters_that_beat_the_defaults() -> None:
    """Only learning_rate searched: every trial is L2, and the L1 member had taken the
    best trial's parameters even when they lost to the default trial."""
    config = TrainingConfig.model_validate(
        {
            "feature_set": "s",
            "target_variable": "y",
            "enable_hpo": True,
            "hyperparameters": {"learning_rate": {"type": "float", "low": 0.01, "high": 0.3}},
        }
    )
    [start] = starting_points(config)
    space = config.search_space()

    def tried(number: int, rate: float, errors: list[float]) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            value=float(np.mean(errors)),
            params={"learning_rate": rate},
            distributions={"learning_rate": distribution(space["learning_rate"])},
            user_attrs={NUMBER: number, "best_iteration": 40, WINDOW_ERRORS: errors},
        )

    lucky = [tried(0, start["learning_rate"], [10.0] * 4), tried(1, 0.02, [9.0, 11.0, 9.2, 10.4])]
    members = member_choices(config, lucky)
    assert members["regression_l1"] == default_member(config, "regression_l1")
    assert set(default_choices(config, lucky)) == {"regression", "regression_l1"}
    better = [lucky[0], tried(1, 0.02, [9.0, 9.1, 8.9, 9.0])]
    borrowed, rounds = member_choices(config, better)["regression_l1"]
    assert (borrowed["learning_rate"], rounds) == (0.02, None)
