"""LightGBM's knobs as a job sets them: the defaults, the names a job may set, and the
search ranges of an HPO job."""

from __future__ import annotations

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
