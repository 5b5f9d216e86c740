"""The status of a stored forecast, where it came from and what it holds."""

from __future__ import annotations

from enum import StrEnum


class ForecastStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    def is_finished(self) -> bool:
        return self in (ForecastStatus.COMPLETED, ForecastStatus.FAILED)


class ForecastSource(StrEnum):
    BATCH = "batch"  # a background forecast over a feature set's series
    PREDICT = "predict"  # a request's forecasts, kept because it asked (``log``)


class ForecastKind(StrEnum):
    """What a stored run computes; both share the rows, statuses and runner of forecasts."""

    FORECAST = "forecast"  # the next steps of a set's series
    DETECTION = "detection"  # an anomaly model's scores and events over a window of a set
