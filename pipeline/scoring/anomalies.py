"""Anomalies: residuals farther from their center than a robust z-score allows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
