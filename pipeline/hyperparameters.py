"""LightGBM's knobs as a job sets them: the defaults, the names a job may set, and the
search ranges of an HPO job."""

from __future__ import annotations

import math
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

#: LightGBM values a job gets unless it sets its own. ``n_estimators`` is a ceiling: early
#: stopping on the validation part picks the rounds. On the real load sets the rate 0.1
#: stops well inside 300 rounds and forecasts about as well as 0.05 with 1,000, in far
#: less time; the ceiling bounds a large set's cost, refits included (measured against
#: mlforecast by bench/default_cost.py). No row bagging (``subsample`` 1.0): at 0.8 each
#: round took longer for the same MAE on the real sets; ``subsample_freq`` stays 1 so
#: that a search's ``subsample`` takes effect.
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 1.0,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
}
#: The objectives of the default model, an equal blend of a mean (L2) and a median (L1)
#: booster; a job that sets ``objective`` trains that one alone.
DEFAULT_OBJECTIVES = ("regression", "regression_l1")
#: LightGBM parameters a job may set; anything else is a typo we refuse rather than ignore.
KNOWN_HYPERPARAMETERS = frozenset(
    {
        "n_estimators",
        "num_iterations",
        "learning_rate",
        "max_depth",
        "num_leaves",
        "subsample",
        "bagging_fraction",
        "subsample_freq",
        "bagging_freq",
        "colsample_bytree",
        "feature_fraction",
        "min_child_samples",
        "min_data_in_leaf",
        "min_child_weight",
        "min_split_gain",
        "reg_alpha",
        "lambda_l1",
        "reg_lambda",
        "lambda_l2",
        "max_bin",
        "objective",
        "seed",
    }
)

HyperparameterValue = int | float | str | bool
#: LightGBM's other names of the parameters the service names (LightGBM reads one of two
#: names and ignores the other): a job's value under either replaces the default.
ALIASES = {
    "num_iterations": "n_estimators",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "feature_fraction": "colsample_bytree",
    "min_data_in_leaf": "min_child_samples",
    "lambda_l1": "reg_alpha",
    "lambda_l2": "reg_lambda",
}


#: How a data-parallel fit's workers reach each other (``pipeline.distributed``): kept in
#: its booster's parameters, they would have a later fit in one process wait for peers.
NETWORK_PARAMETERS = frozenset(
    {
        *("tree_learner", "num_machines", "machines", "machine_list_filename"),
        *("local_listen_port", "time_out", "pre_partition"),
    }
)


def canonical(name: str) -> str:
    """The name the service gives a LightGBM parameter (``ALIASES``)."""
    return ALIASES.get(name, name)


#: The regression objectives a job may set (LightGBM's names and their aliases).
OBJECTIVES = frozenset(
    {
        *("regression", "regression_l2", "l2", "mse", "mean_squared_error"),
        *("rmse", "l2_root", "root_mean_squared_error"),
        *("regression_l1", "l1", "mae", "mean_absolute_error"),
        *("mape", "mean_absolute_percentage_error"),
        *("huber", "fair", "poisson", "quantile", "gamma", "tweedie"),
    }
)
#: Objectives of targets that are never negative (counts, amounts): LightGBM refuses a
#: negative label with them, so no target relative to a level is tried for them.
NONNEGATIVE_OBJECTIVES = frozenset({"poisson", "gamma", "tweedie"})
#: Each numeric parameter's kind and the values LightGBM accepts (with the service's own
#: ceiling on rounds): (whole numbers only, lowest, whether the lowest is allowed,
#: highest). Checked when a job is submitted, so a value LightGBM would refuse is a 422
#: and never a job that fails in its train stage.
_RANGES: dict[str, tuple[bool, float, bool, float]] = {
    **dict.fromkeys(("n_estimators", "num_iterations"), (True, 1, True, 1_000_000)),
    "learning_rate": (False, 0, False, math.inf),
    "max_depth": (True, -math.inf, True, math.inf),
    "num_leaves": (True, 2, True, 131_072),
    **dict.fromkeys(
        ("subsample", "bagging_fraction", "colsample_bytree", "feature_fraction"),
        (False, 0, False, 1),
    ),
    **dict.fromkeys(("subsample_freq", "bagging_freq"), (True, 0, True, math.inf)),
    **dict.fromkeys(("min_child_samples", "min_data_in_leaf"), (True, 0, True, math.inf)),
    **dict.fromkeys(
        ("min_child_weight", "min_split_gain", "reg_alpha", "lambda_l1", "reg_lambda", "lambda_l2"),
        (False, 0, True, math.inf),
    ),
    "max_bin": (True, 2, True, math.inf),
    "seed": (True, -(2**31), True, 2**31 - 1),
}
#: Whole-number parameters.
WHOLE = frozenset(name for name, (whole, *_) in _RANGES.items() if whole)


def whole_if_integral(name: str, value: Any) -> Any:
    """``31.0`` as ``31`` for a whole-number parameter (LightGBM refuses a float there),
    a categorical spec's choices too; any other value as it is."""
    if name not in WHOLE:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, HyperparameterSpec) and value.type == "categorical" and value.choices:
        choices = [whole_if_integral(name, choice) for choice in value.choices]
        return value.model_copy(update={"choices": list(dict.fromkeys(choices))})
    return value


def hyperparameter_problems(values: dict[str, Any]) -> list[str]:
    """Why LightGBM would refuse each of a job's values (fixed or a search range's bounds
    and choices); empty when it would take them all."""
    problems = [
        problem
        for name, value in values.items()
        for candidate in values_to_check(value)
        if (problem := value_problem(name, candidate))
    ]
    searched_as_floats = [
        f"{name} is a whole number: search it as int or categorical, not {value.type}"
        for name, value in values.items()
        if name in WHOLE
        and isinstance(value, HyperparameterSpec)
        and value.type in ("float", "loguniform")
    ]
    twice = [
        f"{alias} and {name} are one LightGBM parameter: set one of them"
        for alias, name in ALIASES.items()
        if alias in values and name in values
    ]
    return list(dict.fromkeys([*problems, *searched_as_floats, *twice]))


def value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be LightGBM's ``name`` (None: it can)."""
    if name == "objective":
        if value in OBJECTIVES:
            return None
        return f"objective must be one of {sorted(OBJECTIVES)}, not {value!r}"
    whole, low, low_allowed, high = _RANGES[name]
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be {kind}, not {value!r}"
    if not math.isfinite(value) or (whole and not float(value).is_integer()):
        return f"{name} must be {kind}, not {value!r}"
    above = value >= low if low_allowed else value > low
    if not above or value > high:
        bound = "at least" if low_allowed else "above"
        top = "" if math.isinf(high) else f" and at most {high:g}"
        return f"{name} must be {bound} {low:g}{top}, not {value!r}"
    return None


#: Searched when an HPO job gives no search spec of its own.
DEFAULT_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "loguniform", "low": 0.01, "high": 0.3},
    "num_leaves": {"type": "int", "low": 8, "high": 128},
    "min_child_samples": {"type": "int", "low": 5, "high": 100},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"type": "float", "low": 0.5, "high": 1.0},
    "reg_lambda": {"type": "loguniform", "low": 1e-3, "high": 10.0},
    "objective": {"type": "categorical", "choices": list(DEFAULT_OBJECTIVES)},
}


class HyperparameterSpec(BaseModel):
    """A search range (the seed's ``HyperparameterSpec``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["float", "int", "loguniform", "categorical"]
    low: float | None = None
    high: float | None = None
    choices: list[HyperparameterValue] | None = None

    @model_validator(mode="after")
    def _well_formed(self) -> Self:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical spec needs a non-empty 'choices' list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} spec needs 'low' and 'high'")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("a loguniform spec needs low > 0")
        if self.type == "int" and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError("an int spec needs whole-number bounds")
        return self


def values_to_check(value: HyperparameterValue | HyperparameterSpec) -> list[Any]:
    """The values a fixed parameter or a search range can give LightGBM: its value, a
    range's bounds or a categorical spec's choices."""
    if not isinstance(value, HyperparameterSpec):
        return [value]
    if value.type == "categorical":
        return list(value.choices or [])
    whole = value.type == "int"
    return [int(b) if whole and b is not None else b for b in (value.low, value.high)]
