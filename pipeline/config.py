"""What a user configures about one training run."""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

#: The seed's LightGBM defaults (``subsample`` needs bagging every round to take effect).
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "n_estimators": 100,
    "learning_rate": 0.1,
    "max_depth": 5,
    "num_leaves": 31,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
}

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


class TrainingConfig(BaseModel):
    """The seed's ``TrainingConfig``: data window, target, horizon, splits and LightGBM knobs."""

    model_config = ConfigDict(extra="forbid")

    feature_set: str = Field(pattern=NAME_PATTERN)
    target_variable: str = Field(min_length=1, max_length=128)
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    horizon: int = Field(24, ge=1, le=24 * 14, description="Steps ahead to forecast.")
    enable_hpo: bool = Field(False, description="Search hyperparameters with Optuna.")
    validation_split: float = Field(0.2, gt=0, lt=0.9)
    test_split: float = Field(0.1, gt=0, lt=0.9)
    hyperparameters: dict[str, HyperparameterValue | HyperparameterSpec] = Field(
        default_factory=dict, description="Fixed LightGBM values, or search specs with HPO."
    )
    early_stopping_rounds: int = Field(50, ge=0, le=10_000, description="0 turns it off.")
    n_workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="CPUs of the training task; with HPO, trials at once (default: cluster CPUs).",
    )
    n_trials: int = Field(20, ge=1, le=1000, description="HPO: trials to run.")
    timeout_seconds: float | None = Field(None, gt=0, description="HPO: wall-clock budget.")
    pruning: bool = Field(True, description="HPO: stop poor trials early (median pruner).")
    anomaly_threshold: float = Field(
        4.0, gt=0, le=100, description="Robust z-score beyond which a residual is an anomaly."
    )
    promote_champion: bool = Field(
        False,
        description="Move the model's 'champion' alias to this version if its test MAE beats "
        "the current champion's.",
    )

    @field_validator("hyperparameters")
    @classmethod
    def _known_hyperparameters(
        cls, values: dict[str, HyperparameterValue | HyperparameterSpec]
    ) -> dict[str, Any]:
        unknown = sorted(set(values) - KNOWN_HYPERPARAMETERS)
        if unknown:
            raise ValueError(
                f"unknown LightGBM parameter(s) {unknown}; known: {sorted(KNOWN_HYPERPARAMETERS)}"
            )
        return values

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        if self.validation_split + self.test_split >= 0.9:
            raise ValueError("validation_split + test_split must be below 0.9")
        specs = [k for k, v in self.hyperparameters.items() if isinstance(v, HyperparameterSpec)]
        if specs and not self.enable_hpo:
            raise ValueError(f"search specs for {specs} need enable_hpo: true")
        return self

    def lightgbm_params(self) -> dict[str, Any]:
        """The seed's defaults overridden by the job's fixed hyperparameters."""
        fixed = {
            k: v for k, v in self.hyperparameters.items() if not isinstance(v, HyperparameterSpec)
        }
        return {**DEFAULT_HYPERPARAMETERS, **fixed}

    def search_space(self) -> dict[str, HyperparameterSpec]:
        """The job's search specs, or the default space when it gives none."""
        specs = {k: v for k, v in self.hyperparameters.items() if isinstance(v, HyperparameterSpec)}
        if specs:
            return specs
        space = {k: HyperparameterSpec.model_validate(v) for k, v in DEFAULT_SEARCH_SPACE.items()}
        return {k: v for k, v in space.items() if k not in self.hyperparameters}

    @property
    def train_cpus(self) -> int:
        return self.n_workers or 1


def is_valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None
