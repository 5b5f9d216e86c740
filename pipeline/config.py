"""What a user configures about one training run."""

from __future__ import annotations

import re
from typing import Any, Self

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


class TrainingConfig(BaseModel):
    """The seed's ``TrainingConfig``: data window, target, horizon, splits and LightGBM knobs."""

    model_config = ConfigDict(extra="forbid")

    feature_set: str = Field(pattern=NAME_PATTERN)
    target_variable: str = Field(min_length=1, max_length=128)
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    horizon: int = Field(24, ge=1, le=24 * 14, description="Steps ahead to forecast.")
    enable_hpo: bool = Field(False, description="Hyperparameter search is not available yet.")
    validation_split: float = Field(0.2, gt=0, lt=0.9)
    test_split: float = Field(0.1, gt=0, lt=0.9)
    hyperparameters: dict[str, HyperparameterValue] = Field(default_factory=dict)
    early_stopping_rounds: int = Field(50, ge=0, le=10_000, description="0 turns it off.")
    n_workers: int = Field(1, ge=1, le=256, description="CPUs the training task holds.")
    anomaly_threshold: float = Field(
        4.0, gt=0, le=100, description="Robust z-score beyond which a residual is an anomaly."
    )

    @field_validator("enable_hpo")
    @classmethod
    def _no_hpo_yet(cls, enabled: bool) -> bool:
        if enabled:
            raise ValueError("hyperparameter search is not available in this version")
        return enabled

    @field_validator("hyperparameters")
    @classmethod
    def _known_hyperparameters(cls, values: dict[str, HyperparameterValue]) -> dict[str, Any]:
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
        return self

    def lightgbm_params(self) -> dict[str, Any]:
        """The seed's defaults overridden by the job's hyperparameters."""
        return {**DEFAULT_HYPERPARAMETERS, **self.hyperparameters}


def is_valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None
