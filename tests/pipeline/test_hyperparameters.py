"""A job's LightGBM values are checked when it is submitted, against what LightGBM accepts;
a config stored before the check still loads."""

from __future__ import annotations

import math
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from pipeline.config import TrainingConfig
from pipeline.hyperparameters import (
    DEFAULT_HYPERPARAMETERS,
    DEFAULT_SEARCH_SPACE,
    OBJECTIVES,
    hyperparameter_problems,
    value_problem,
)


def _config(hyperparameters: dict[str, Any], **fields: Any) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {"feature_set": "s", "target_variable": "y", "hyperparameters": hyperparameters, **fields}
    )


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("num_leaves", -5, "at least 2"),
        ("num_leaves", 1, "at least 2"),
        ("num_leaves", 8.5, "whole number"),
        ("learning_rate", 0, "above 0"),
        ("learning_rate", math.nan, "a number"),
        ("learning_rate", math.inf, "a number"),
        ("subsample", 1.5, "at most 1"),
        ("subsample", True, "a number"),
        ("max_bin", 1, "at least 2"),
        ("n_estimators", "300", "whole number"),
        ("reg_lambda", -0.1, "at least 0"),
        ("objective", "bogus", "one of"),
    ],
)
def test_a_value_lightgbm_refuses_is_a_problem_naming_it(
    name: str, value: Any, problem: str
) -> None:
    assert problem in (value_problem(name, value) or "")
    [found] = hyperparameter_problems(_config({name: value}).hyperparameters)
    assert name in found


def test_a_stored_config_with_a_refused_value_still_loads() -> None:
    """Jobs queued before the check, and their retries' source, are read back as saved."""
    assert _config({"num_leaves": 1}).hyperparameters == {"num_leaves": 1}


def test_whole_numbers_written_as_floats_are_whole_numbers() -> None:
    config = _config({"num_leaves": 31.0, "learning_rate": 1.0})
    assert config.hyperparameters == {"num_leaves": 31, "learning_rate": 1.0}
    assert isinstance(config.hyperparameters["num_leaves"], int)
    assert hyperparameter_problems(config.hyperparameters) == []
    # A search's choices too (json.dumps writes Python floats so): every trial had failed.
    spec = {"type": "categorical", "choices": [15.0, 63.0, 63]}
    searched = _config(
        {"num_leaves": spec, "learning_rate": {**spec, "choices": [0.1, 1.0]}}, enable_hpo=True
    )
    leaves = searched.search_space()["num_leaves"].choices
    assert leaves == [15, 63]
    assert all(type(choice) is int for choice in leaves)
    assert searched.search_space()["learning_rate"].choices == [0.1, 1.0]
    lgb.train(
        {"num_leaves": leaves[0], "verbose": -1}, lgb.Dataset(np.ones((30, 1)), np.arange(30.0)), 1
    )


def test_an_alias_replaces_the_default_and_leaves_the_search_space() -> None:
    """num_iterations 40 had left the default n_estimators 300 beside it: the refits and
    the stored parameters read 300. A fixed min_data_in_leaf had left its twin
    min_child_samples searched, which LightGBM then ignored."""
    config = _config({"num_iterations": 40, "min_data_in_leaf": 400}, enable_hpo=True)
    params = config.lightgbm_params()
    assert (params["n_estimators"], params["min_child_samples"]) == (40, 400)
    assert "num_iterations" not in params
    assert "min_child_samples" not in config.search_space()
    assert "learning_rate" in config.search_space()
    both = {"n_estimators": 40, "num_iterations": 50, "lambda_l2": 1.0}
    searched = {"reg_lambda": {"type": "float", "low": 0.0, "high": 1.0}}
    problems = hyperparameter_problems(
        _config({**both, **searched}, enable_hpo=True).hyperparameters
    )
    assert problems == [
        "num_iterations and n_estimators are one LightGBM parameter: set one of them",
        "lambda_l2 and reg_lambda are one LightGBM parameter: set one of them",
    ]


def test_lightgbm_agrees_with_the_bounds() -> None:
    """The lowest values the ranges allow train, and so does every objective allowed; the
    values below them are LightGBM's errors too."""
    X, y = np.random.default_rng(0).normal(size=(200, 3)), np.arange(1, 201.0)

    def trains(params: dict[str, Any]) -> bool:
        try:
            lgb.train({"verbosity": -1, **params}, lgb.Dataset(X, y), num_boost_round=2)
        except lgb.basic.LightGBMError:
            return False
        return True

    assert trains({"num_leaves": 2, "max_bin": 2, "learning_rate": 2.0, "max_depth": -5})
    for params in ({"num_leaves": 2}, {"learning_rate": 2.0}, {"max_depth": -5}):
        assert hyperparameter_problems(params) == [], params
    for objective in sorted(OBJECTIVES):
        assert trains({"objective": objective}), objective
    for refused in ({"num_leaves": 1}, {"bagging_fraction": 1.5}, {"objective": "bogus"}):
        [(name, value)] = refused.items()
        assert not trains(refused), refused
        assert value_problem(name, value), refused


def test_defaults_and_the_default_search_space_pass() -> None:
    assert hyperparameter_problems(dict(DEFAULT_HYPERPARAMETERS)) == []
    searched = _config(dict(DEFAULT_SEARCH_SPACE), enable_hpo=True)
    assert hyperparameter_problems(searched.hyperparameters) == []


def test_a_search_range_is_checked_at_its_bounds_choices_and_kind() -> None:
    def problems(spec: dict[str, Any]) -> list[str]:
        return hyperparameter_problems(_config(spec, enable_hpo=True).hyperparameters)

    [wide] = problems({"subsample": {"type": "float", "low": 0.5, "high": 2.0}})
    assert "subsample must be above 0 and at most 1" in wide
    [unknown] = problems({"objective": {"type": "categorical", "choices": ["l2", "x"]}})
    assert "objective must be one of" in unknown
    [fractional] = problems({"num_leaves": {"type": "float", "low": 8, "high": 64}})
    assert "search it as int" in fractional
    assert problems({"num_leaves": {"type": "int", "low": 2, "high": 64}}) == []


def test_a_config_stored_with_a_combination_refused_since_still_loads() -> None:
    """time_budget_s with enable_hpo is refused at submission; a job queued before loads
    (a refusal in the config itself had stopped the orchestrator from loading its queue)."""
    stored = _config({}, enable_hpo=True, time_budget_s=60)
    assert (stored.enable_hpo, stored.time_budget_s) == (True, 60)
