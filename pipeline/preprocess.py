"""The preprocess stage: features, a time-ordered split, and a scaler fitted on training rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from domain.errors import PipelineError
from pipeline.config import TrainingConfig
from pipeline.feature_store import FeatureFrame, FeatureSetSchema
from pipeline.features import (
    SERIES_FEATURE,
    FeatureMatrix,
    FeatureSpec,
    build_features,
    default_spec,
)
from pipeline.summaries import PreprocessSummary

logger = logging.getLogger(__name__)

MIN_ROWS = {"train": 100, "validation": 20, "test": 20}
CATEGORICAL_FEATURES = frozenset({SERIES_FEATURE})


@dataclass(frozen=True)
class Split:
    """One part of the data. Arrays are plain numpy (timestamps as UTC ``datetime64[ns]``),
    so Ray passes them between stages without pickling Python objects one by one."""

    X: np.ndarray
    y: np.ndarray
    timestamps: np.ndarray
    series: np.ndarray | None
    labels: np.ndarray | None
    seasonal_naive: np.ndarray


@dataclass(frozen=True)
class PreparedData:
    train: Split
    validation: Split
    test: Split
    feature_names: list[str]
    scaler: StandardScaler
    spec: FeatureSpec
    feature_schema: FeatureSetSchema

    @property
    def categorical(self) -> list[str]:
        """Features LightGBM treats as categories (the scaler leaves them as they are)."""
        return [name for name in self.feature_names if name in CATEGORICAL_FEATURES]

    @property
    def season(self) -> int:
        return self.spec.season

    def summary(self) -> PreprocessSummary:
        return PreprocessSummary(
            train_rows=len(self.train.y),
            validation_rows=len(self.validation.y),
            test_rows=len(self.test.y),
            features=len(self.feature_names),
        )


def time_split_bounds(
    timestamps: pd.Series, validation_split: float, test_split: float
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first validation and first test timestamps: the last fractions of distinct times."""
    unique = np.sort(timestamps.unique())
    n = len(unique)
    test_start = unique[n - max(1, round(n * test_split))]
    validation_start = unique[n - max(2, round(n * (test_split + validation_split)))]
    return pd.Timestamp(validation_start), pd.Timestamp(test_start)


def preprocess(
    frame: FeatureFrame, config: TrainingConfig, spec: FeatureSpec | None = None
) -> PreparedData:
    """Build features (``spec``'s, by default those the data calls for), split by time (no
    shuffle), scale with training statistics only."""
    spec = spec or default_spec(frame, config)
    matrix = build_features(frame, spec, config.start_date, config.end_date)
    if len(matrix.target) == 0:
        raise PipelineError("no rows with complete features in the selected date range")
    validation_start, test_start = time_split_bounds(
        matrix.timestamps, config.validation_split, config.test_split
    )
    ts = matrix.timestamps
    masks = {
        "train": (ts < validation_start).to_numpy(),
        "validation": ((ts >= validation_start) & (ts < test_start)).to_numpy(),
        "test": (ts >= test_start).to_numpy(),
    }
    for part, mask in masks.items():
        if mask.sum() < MIN_ROWS[part]:
            raise PipelineError(
                f"only {int(mask.sum())} {part} rows in the selected range "
                f"({len(matrix.target)} usable rows in all); need at least {MIN_ROWS[part]}"
            )
    logger.info(
        "%d usable rows; split by time: train < %s <= validation < %s <= test",
        len(matrix.target),
        validation_start.isoformat(),
        test_start.isoformat(),
    )
    scaler = StandardScaler().fit(matrix.features[masks["train"]].to_numpy())
    _keep_categories(scaler, list(matrix.features.columns))
    splits = {part: _split(matrix, mask, scaler) for part, mask in masks.items()}
    return PreparedData(
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        feature_names=list(matrix.features.columns),
        scaler=scaler,
        spec=spec,
        feature_schema=frame.schema,
    )


def _keep_categories(scaler: StandardScaler, names: list[str]) -> None:
    """Make the scaler pass categorical columns through unchanged (codes must stay codes)."""
    for index, name in enumerate(names):
        if name in CATEGORICAL_FEATURES:
            scaler.mean_[index] = 0.0
            scaler.var_[index] = 1.0
            scaler.scale_[index] = 1.0


def _split(matrix: FeatureMatrix, mask: np.ndarray, scaler: StandardScaler) -> Split:
    return Split(
        X=scaler.transform(matrix.features[mask].to_numpy()),
        y=matrix.target[mask],
        timestamps=matrix.timestamps[mask].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]"),
        series=matrix.series[mask].to_numpy(dtype=str) if matrix.series is not None else None,
        labels=matrix.labels[mask] if matrix.labels is not None else None,
        seasonal_naive=matrix.seasonal_naive[mask],
    )
