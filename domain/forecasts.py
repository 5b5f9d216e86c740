"""The status of a batch forecast."""

from __future__ import annotations

from enum import StrEnum


class ForecastStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    def is_finished(self) -> bool:
        return self in (ForecastStatus.COMPLETED, ForecastStatus.FAILED)
