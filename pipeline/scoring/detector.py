"""An anomaly model's detector: calibrated scores of its residuals, alarms past the
threshold and the events they make (``pipeline.scoring.anomalies``,
``pipeline.scoring.events``), stored in the model's metadata.

Models registered before the calibration kept a fixed robust z (``center``, ``scale``,
``z``): they are served as they were evaluated, their score the plain ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.scoring.anomalies import AnomalyCalibration
from pipeline.scoring.events import Events, group_events

METADATA_KEY = "anomaly_detector"
LEGACY_METADATA_KEY = "anomaly_threshold"


@dataclass(frozen=True)
class Detection:
    scores: np.ndarray
    alarms: np.ndarray
    events: Events


@dataclass(frozen=True)
class AnomalyDetector:
    calibration: AnomalyCalibration | None
    threshold: float
    gap: int
    suppress: int
    legacy_center: float = 0.0
    legacy_scale: float = 1.0

    def detect(
        self,
        actual: np.ndarray,
        predicted: np.ndarray,
        timestamps: np.ndarray | pd.DatetimeIndex,
        series: np.ndarray | None = None,
        first: int = 0,
        in_sample: np.ndarray | None = None,
        step: pd.Timedelta | None = None,
    ) -> Detection:
        """Scores, alarms and events of the rows from ``first`` on; the rows before it are
        history the trailing scale reads, except ``in_sample`` ones. Rows are in time order
        within each series, ``step`` apart (the model's cadence; None: read from the rows),
        which ``gap`` and ``suppress`` count; rows without an actual (the future) score NaN
        and raise no alarm. Timestamps without a zone are UTC."""
        residuals = np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)
        if self.calibration is None:
            scores = np.abs(residuals - self.legacy_center) / self.legacy_scale
        else:
            scores = self.calibration.scores(residuals, series, in_sample)
        stamps = pd.DatetimeIndex(timestamps)
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        scores, stamps = scores[first:], stamps[first:]
        names = None if series is None else series[first:]
        alarms = np.nan_to_num(scores, nan=0.0) > self.threshold
        events = group_events(
            stamps, names, scores, alarms, self.threshold, self.gap, self.suppress, step
        )
        return Detection(scores, alarms, events)

    def to_dict(self) -> dict[str, Any]:
        if self.calibration is None:
            raise ValueError("a legacy detector is not stored again")
        return {
            "calibration": self.calibration.to_dict(),
            "threshold": self.threshold,
            "gap": self.gap,
            "suppress": self.suppress,
        }


def detector_of(metadata: dict[str, Any]) -> AnomalyDetector | None:
    """The detector a model's metadata stores; None for a forecasting model."""
    stored = metadata.get(METADATA_KEY)
    if stored is not None:
        return AnomalyDetector(
            calibration=AnomalyCalibration.from_dict(stored["calibration"]),
            threshold=float(stored["threshold"]),
            gap=int(stored["gap"]),
            suppress=int(stored["suppress"]),
        )
    legacy = metadata.get(LEGACY_METADATA_KEY)
    if legacy is None:
        return None
    return AnomalyDetector(
        calibration=None,
        threshold=float(legacy["z"]),
        gap=1,
        suppress=0,
        legacy_center=float(legacy["center"]),
        legacy_scale=float(legacy["scale"]) or 1.0,
    )
