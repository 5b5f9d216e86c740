"""The evaluate stage: test-set accuracy against a seasonal-naive baseline, and anomalies."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
)

from domain.jobs import ModelType
from pipeline.preprocess import PreparedData
from pipeline.train import TrainedModel

logger = logging.getLogger(__name__)

#: Scales a median absolute deviation to a normal distribution's standard deviation.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class ResidualThreshold:
    """A point is anomalous when |residual - center| > limit (robust z-score)."""

    center: float
    scale: float
    z: float

    @property
    def limit(self) -> float:
        return self.z * self.scale

    def flags(self, actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        flags: np.ndarray = np.abs(actual - predicted - self.center) > self.limit
        return flags


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    predictions: np.ndarray
    threshold: ResidualThreshold | None
    anomaly_flags: np.ndarray | None

    def summary(self) -> dict[str, object]:
        return {"metrics": self.metrics}


def predict(model: TrainedModel, X: np.ndarray) -> np.ndarray:
    predictions: np.ndarray = np.asarray(
        model.booster.predict(X, num_iteration=model.best_iteration)
    )
    return predictions


def evaluate(
    model: TrainedModel, data: PreparedData, model_type: ModelType, anomaly_z: float
) -> Evaluation:
    """MAE, RMSE, MAPE, R², the seasonal-naive MAE and MASE; for anomaly models, flags too."""
    test = data.test
    predictions = predict(model, test.X)
    mae = float(mean_absolute_error(test.y, predictions))
    nonzero = test.y != 0
    naive_mae = float(np.mean(np.abs(test.y - test.seasonal_naive)))
    in_sample_naive_mae = float(np.mean(np.abs(data.train.y - data.train.seasonal_naive)))
    metrics = {
        "mae": mae,
        "rmse": float(np.sqrt(mean_squared_error(test.y, predictions))),
        "mape": float(
            np.mean(np.abs((test.y[nonzero] - predictions[nonzero]) / test.y[nonzero])) * 100
        ),
        "r2": float(r2_score(test.y, predictions)),
        "naive_mae": naive_mae,
        "mase": mae / in_sample_naive_mae if in_sample_naive_mae > 0 else float("nan"),
    }
    metrics = {name: value for name, value in metrics.items() if math.isfinite(value)}
    threshold = flags = None
    if model_type is ModelType.ANOMALY:
        residuals = data.validation.y - predict(model, data.validation.X)
        center = float(np.median(residuals))
        scale = MAD_TO_SIGMA * float(np.median(np.abs(residuals - center)))
        threshold = ResidualThreshold(center, scale, anomaly_z)
        flags = threshold.flags(test.y, predictions)
        metrics["anomaly_rate"] = float(flags.mean())
        if test.labels is not None:
            labels = test.labels
            metrics["precision"] = float(precision_score(labels, flags, zero_division=0))
            metrics["recall"] = float(recall_score(labels, flags, zero_division=0))
            metrics["f1"] = float(f1_score(labels, flags, zero_division=0))
    logger.info(
        "test metrics: %s",
        ", ".join(f"{name}={value:.4f}" for name, value in metrics.items()),
    )
    return Evaluation(metrics, predictions, threshold, flags)
