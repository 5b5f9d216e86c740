"""The preprocess stage: features, a time-ordered split, and a scaler fitted on training rows."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from domain.errors import PipelineError
from pipeline.config import TrainingConfig
from pipeline.features.build import (
    SERIES_FEATURE,
    FeatureMatrix,
    FeatureSpec,
    build_features,
    default_spec,
)
from pipeline.scoring.series import naive_mae, naive_scales
from pipeline.store.feature_store import FeatureFrame, FeatureSetSchema
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

    @property
    def normal(self) -> np.ndarray:
        """Which rows are not labelled as anomalies: those a model is fitted and
        calibrated on (the training part holds no others, ``SplitBounds.masks``)."""
        return ~self.labels if self.labels is not None else np.ones(len(self.y), dtype=bool)

    def unlabelled(self) -> Split:
        """The rows not labelled as anomalies, as a part of their own."""
        if self.labels is None or not self.labels.any():
            return self
        keep = self.normal
        return Split(
            X=self.X[keep],
            y=self.y[keep],
            timestamps=self.timestamps[keep],
            series=self.series[keep] if self.series is not None else None,
            labels=self.labels[keep],
            seasonal_naive=self.seasonal_naive[keep],
        )


@dataclass(frozen=True)
class PreparedFeatures(ABC):
    """What every prepared job has, whatever holds its training rows: the validation and
    test parts, the features and the scaler fitted on the training rows."""

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

    @property
    @abstractmethod
    def train_rows(self) -> int: ...

    @abstractmethod
    def train_period(self) -> tuple[np.datetime64, np.datetime64]:
        """The first and last training timestamps."""

    @abstractmethod
    def naive_scale(self) -> float:
        """The seasonal-naive MAE on the training rows: MASE's denominator."""

    @abstractmethod
    def naive_scales(self) -> pd.Series | None:
        """Each series' ``naive_scale`` (None for a set of one series)."""

    def summary(self) -> PreprocessSummary:
        return PreprocessSummary(
            train_rows=self.train_rows,
            validation_rows=len(self.validation.y),
            test_rows=len(self.test.y),
            features=len(self.feature_names),
        )


@dataclass(frozen=True)
class PreparedData(PreparedFeatures):
    """A job's data with its training part in this process."""

    train: Split

    @property
    def train_rows(self) -> int:
        return len(self.train.y)

    def train_period(self) -> tuple[np.datetime64, np.datetime64]:
        return self.train.timestamps[0], self.train.timestamps[-1]

    def naive_scale(self) -> float:
        return naive_mae(self.train.y, self.train.seasonal_naive)

    def naive_scales(self) -> pd.Series | None:
        if self.train.series is None:
            return None
        return naive_scales(self.train.series, self.train.y, self.train.seasonal_naive)


@dataclass(frozen=True)
class SplitBounds:
    """The first validation and first test timestamps."""

    validation_start: pd.Timestamp
    test_start: pd.Timestamp

    def masks(
        self, timestamps: pd.Series, labels: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each part's rows among ``timestamps``. Rows ``labels`` marks as anomalies are
        left out of the training part: a model learns what normal looks like, and an
        incident's values would teach it to expect the next one (they still feed the lags
        of the rows after them, as they do when the model is served)."""
        train = (timestamps < self.validation_start).to_numpy()
        if labels is not None:
            train = train & ~labels
        return {
            "train": train,
            "validation": (
                (timestamps >= self.validation_start) & (timestamps < self.test_start)
            ).to_numpy(),
            "test": (timestamps >= self.test_start).to_numpy(),
        }


def split_bounds(rows_per_timestamp: pd.Series, config: TrainingConfig) -> SplitBounds:
    """Split the usable rows by time (the last fractions of their distinct timestamps are
    the validation and test parts) from how many rows each timestamp has.

    Raises:
        PipelineError: no rows, or a part with fewer than ``MIN_ROWS``.
    """
    counts = rows_per_timestamp.sort_index()
    total = int(counts.sum())
    if total == 0:
        raise PipelineError("no rows with complete features in the selected date range")
    validation_start, test_start = time_split_bounds(
        counts.index.to_series(), config.validation_split, config.test_split
    )
    bounds = SplitBounds(validation_start, test_start)
    for part, mask in bounds.masks(counts.index.to_series()).items():
        rows = int(counts[mask].sum())
        if rows < MIN_ROWS[part]:
            raise PipelineError(
                f"only {rows} {part} rows in the selected range "
                f"({total} usable rows in all); need at least {MIN_ROWS[part]}"
            )
    logger.info(
        "%d usable rows; split by time: train < %s <= validation < %s <= test",
        total,
        validation_start.isoformat(),
        test_start.isoformat(),
    )
    return bounds


def check_fitted_rows(train: int, validation: int) -> None:
    """Raise ``PipelineError`` when the training or validation part holds fewer than
    ``MIN_ROWS`` rows not labelled as anomalies (``train`` and ``validation`` of them):
    those are the rows a model is fitted and calibrated on."""
    for part, rows in (("train", train), ("validation", validation)):
        if rows < MIN_ROWS[part]:
            raise PipelineError(
                f"only {rows} {part} rows not labelled as anomalies; a model is fitted on "
                f"those and needs at least {MIN_ROWS[part]}"
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
    bounds = split_bounds(matrix.timestamps.value_counts(), config)
    masks = bounds.masks(matrix.timestamps, matrix.labels)
    if matrix.labels is not None:
        unlabelled = int(np.count_nonzero(masks["validation"] & ~matrix.labels))
        check_fitted_rows(int(np.count_nonzero(masks["train"])), unlabelled)
        logger.info("%d rows labelled as anomalies: scored, not fitted on", matrix.labels.sum())
    scaler = StandardScaler().fit(matrix.features[masks["train"]].to_numpy())
    keep_categories(scaler, list(matrix.features.columns))
    splits = {part: split_rows(matrix, mask, scaler) for part, mask in masks.items()}
    return PreparedData(
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        feature_names=list(matrix.features.columns),
        scaler=scaler,
        spec=spec,
        feature_schema=frame.schema,
    )


def keep_categories(scaler: StandardScaler, names: list[str]) -> None:
    """Make the scaler pass categorical columns through unchanged (codes must stay codes)."""
    for index, name in enumerate(names):
        if name in CATEGORICAL_FEATURES:
            scaler.mean_[index] = 0.0
            scaler.var_[index] = 1.0
            scaler.scale_[index] = 1.0


def split_rows(matrix: FeatureMatrix, mask: np.ndarray, scaler: StandardScaler) -> Split:
    """The ``mask`` rows of ``matrix``, scaled (none, for a bucket without rows there)."""
    X = matrix.features[mask].to_numpy(dtype="float64")
    return Split(
        X=scaler.transform(X) if len(X) else X,
        y=matrix.target[mask],
        timestamps=matrix.timestamps[mask].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]"),
        series=matrix.series[mask].to_numpy(dtype=str) if matrix.series is not None else None,
        labels=matrix.labels[mask] if matrix.labels is not None else None,
        seasonal_naive=matrix.seasonal_naive[mask],
    )
