"""Enumerations that describe a training job."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def is_finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobPriority(IntEnum):
    """Higher runs first; the API speaks the names, the database stores the numbers."""

    LOW = -1
    NORMAL = 0
    HIGH = 1
    URGENT = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> JobPriority:
        return cls[label.upper()]


class ModelType(StrEnum):
    FORECAST = "forecast"
    ANOMALY = "anomaly"


class ExperimentStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    PRUNED = "pruned"
    FAILED = "failed"
    CANCELLED = "cancelled"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"
