"""Cron schedules as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.cron import valid_cron, valid_timezone
from domain.names import NAME_PATTERN
from serve_app.schemas.jobs import JobCreate

ConcurrencyPolicy = Literal["forbid", "allow"]
#: The shortest and longest training window a schedule may ask for.
MIN_WINDOW, MAX_WINDOW = timedelta(hours=1), timedelta(days=3660)


def checked_cron(expression: str | None) -> str | None:
    if expression is not None and not valid_cron(expression):
        raise ValueError(
            f"{expression!r} is not a five-field cron expression that ever fires (e.g. '0 2 * * *')"
        )
    return expression


def checked_timezone(name: str | None) -> str | None:
    if name is not None and not valid_timezone(name):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name, e.g. 'Europe/Berlin')")
    return name


def _window(window: timedelta | None) -> timedelta | None:
    if window is not None and not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ValueError(f"window must be between {MIN_WINDOW} and {MAX_WINDOW}")
    return window


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, examples=["nightly-retrain"])
    cron: str = Field(max_length=128, examples=["0 2 * * *"])
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"])
    job: JobCreate = Field(description="The start-job body; its dates are set at each fire.")
    window: timedelta = Field(
        timedelta(days=365),
        description="Training window: each fire trains on [fire time - window, fire time).",
    )
    enabled: bool = True
    concurrency_policy: ConcurrencyPolicy = Field(
        "forbid", description="forbid: skip a fire while the last run is queued or running."
    )

    _check_cron = field_validator("cron")(checked_cron)
    _check_timezone = field_validator("timezone")(checked_timezone)
    _check_window = field_validator("window")(_window)


class SchedulePatch(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=NAME_PATTERN)
    cron: str | None = Field(None, max_length=128)
    timezone: str | None = Field(None, max_length=64)
    job: JobCreate | None = None
    window: timedelta | None = None
    enabled: bool | None = None
    concurrency_policy: ConcurrencyPolicy | None = None

    _check_cron = field_validator("cron")(checked_cron)
    _check_timezone = field_validator("timezone")(checked_timezone)
    _check_window = field_validator("window")(_window)

    @model_validator(mode="after")
    def _not_null(self) -> Self:
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"{nulls} cannot be null; leave a field out to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """The columns to update."""
        changes = self.model_dump(exclude_unset=True, mode="json", exclude={"window"})
        if "window" in self.model_fields_set and self.window is not None:
            changes["window_seconds"] = self.window.total_seconds()
        return changes


class SchedulePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    schedule_id: str
    tenant_id: str
    name: str
    cron: str
    timezone: str
    job: dict[str, Any]
    window_seconds: float
    enabled: bool
    concurrency_policy: ConcurrencyPolicy
    created_at: datetime
    updated_at: datetime
    last_fire_at: datetime | None
    next_fires: list[datetime] = Field(default_factory=list, description="The next 3, in UTC.")
    recent_job_ids: list[str] = Field(default_factory=list, description="Newest first.")


class SchedulesPublic(BaseModel):
    schedules: list[SchedulePublic]
