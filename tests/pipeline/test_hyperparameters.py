"""A job's LightGBM values are checked when it is submitted, against what LightGBM accepts."""

from __future__ import annotations

import math
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.config import TrainingConfig
from pipeline.hyperparameters import (
    DEFAULT_HYPERPARAMETERS,
    DEFAULT_SEARCH_SPACE,
    KNOWN_HYPERPARAMETERS,
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
def test_a_value_lightgbm_refuses_is_refused_naming_it(name: str, value: Any, problem: str) -> None:
    assert problem in (value_problem(name, value) or "")
    with pytest.raises(ValidationError, match=name):
        _config({name: value})


def test_lightgbm_agrees_with_the_bounds() -> None:
    """The lowest value each range allows trains; one below it is LightGBM's error too."""
    X, y = np.random.default_rng(0).normal(size=(200, 3)), np.arange(200.0)

    def trains(params: dict[str, Any]) -> bool:
        try:
            lgb.train({"verbosity": -1, **params}, lgb.Dataset(X, y), num_boost_round=2)
        except lgb.basic.LightGBMError:
            return False
        return True

    assert trains({"num_leaves": 2, "max_bin": 2})
    assert value_problem("num_leaves", 2) is None
    assert value_problem("max_bin", 2) is None
    for refused in ({"num_leaves": 1}, {"bagging_fraction": 1.5}, {"objective": "bogus"}):
        [(name, value)] = refused.items()
        assert not trains(refused), refused
        assert value_problem(name, value), refused


def test_defaults_and_the_default_search_space_pass() -> None:
    for name, value in DEFAULT_HYPERPARAMETERS.items():
        assert value_problem(name, value) is None, name
    _config(dict(DEFAULT_SEARCH_SPACE), enable_hpo=True)
    assert set(DEFAULT_HYPERPARAMETERS) <= KNOWN_HYPERPARAMETERS


def test_a_search_range_is_checked_at_its_bounds_and_choices() -> None:
    with pytest.raises(ValidationError, match="subsample must be above 0 and at most 1"):
        _config({"subsample": {"type": "float", "low": 0.5, "high": 2.0}}, enable_hpo=True)
    with pytest.raises(ValidationError, match="objective must be one of"):
        _config({"objective": {"type": "categorical", "choices": ["l2", "x"]}}, enable_hpo=True)
    searched = _config({"num_leaves": {"type": "int", "low": 2, "high": 64}}, enable_hpo=True)
    assert "num_leaves" in searched.hyperparameters
