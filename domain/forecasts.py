"""The status of a stored forecast, and where it came from."""

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
