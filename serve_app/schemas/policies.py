"""Retrain policies as the API takes and shows them (``domain.policies`` states the
rules)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.policies import Rules
from domain.promotions import PromotionMetric
from domain.rollbacks import LOOKS
from serve_app.schemas.jobs import JobCreate
from serve_app.schemas.paging import PagePublic
from serve_app.schemas.schedules import checked_cron, checked_timezone


class RulesBody(BaseModel):
    """When to retrain; a rule left out is off, and at least one is on."""

    model_config = ConfigDict(extra="forbid")

    drift_evaluations: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Retrain once the champion's last N scored forecasts were all 'drifted'.",
    )
    new_rows: int | None = Field(
        None, ge=1, description="Retrain once the set has N rows the champion never saw."
    )
    new_days: float | None = Field(
        None, gt=0, le=3660, description="Retrain once the set reaches N days past them."
    )
    cron: str | None = Field(None, max_length=128, examples=["0 2 * * *"])
    timezone: str = Field("UTC", max_length=64)

    _check_cron = field_validator("cron")(checked_cron)
    _check_timezone = field_validator("timezone")(checked_timezone)

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if not Rules(**self.model_dump()).any():
            raise ValueError("give at least one rule: drift_evaluations, new_rows, new_days, cron")
        return self


class RollbackBody(BaseModel):
    """Roll a new champion back to the one its promotion replaced when, on the same rows
    of its served forecasts, the previous one scores better (``domain.rollbacks``)."""

    model_config = ConfigDict(extra="forbid")

    after_forecasts: int = Field(
        7,
        ge=1,
        le=100,
        description="Decide once this many of the new champion's scored forecasts were "
        f"also forecast by the previous one; the promotion stands after {LOOKS}x as many "
        f"over {LOOKS}x the days the paired test needs to be min_confidence sure.",
    )
    metric: PromotionMetric = Field(
        "mae", description="'mae', 'wql' or 'coverage_error' (these two need quantiles)."
    )
    margin: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="Rolled back only if the previous champion's score < (1 - margin) x "
        "the new one's.",
    )
    min_confidence: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="How sure a one-sided Wilcoxon signed-rank test over the paired daily "
        "scores (1 - p) must be that the previous champion is better by the margin.",
    )


def _not_negative(value: timedelta | None) -> timedelta | None:
    if value is not None and value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _positive(value: timedelta | None) -> timedelta | None:
    """A window is a length of time (null, not 0, for all of the set)."""
    if value is not None and value <= timedelta(0):
        raise ValueError("must be longer than 0 (null trains on all of the set)")
    return value


def needs_quantiles(rule: RollbackBody | None, quantiles: list[float] | None) -> None:
    """Raises: ValueError: the rollback rule's metric scores quantiles the job has none of."""
    if rule is not None and rule.metric != "mae" and not quantiles:
        raise ValueError(f"rollback.metric {rule.metric!r} needs quantiles")


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: JobCreate = Field(
        description="The start-job body a retrain submits (its model_name is the policy's; "
        "its end date is cleared: a retrain trains on the newest rows)."
    )
    rules: RulesBody
    cooldown: timedelta = Field(
        timedelta(days=1), description="No retrain sooner than this after the last one."
    )
    max_per_day: int = Field(2, ge=1, le=100, description="Retrains in any 24 hours.")
    window: timedelta | None = Field(
        None, description="Each retrain trains on the set's last this long (null: all of it)."
    )
    warm_start: bool = Field(
        True, description="Start from the champion's hyperparameters, without a search."
    )
    enabled: bool = True
    rollback: RollbackBody | None = Field(
        None, description="When to roll a new champion back automatically (null: never)."
    )

    _check_cooldown = field_validator("cooldown")(_not_negative)
    _check_window = field_validator("window")(_positive)

    @model_validator(mode="after")
    def _rollback_metric(self) -> Self:
        needs_quantiles(self.rollback, self.job.config.quantiles)
        return self


class PolicyPatch(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    job: JobCreate | None = None
    rules: RulesBody | None = None
    cooldown: timedelta | None = None
    max_per_day: int | None = Field(None, ge=1, le=100)
    window: timedelta | None = None
    warm_start: bool | None = None
    enabled: bool | None = None
    rollback: RollbackBody | None = Field(None, description="null turns it off.")

    _check_cooldown = field_validator("cooldown")(_not_negative)
    _check_window = field_validator("window")(_positive)

    @model_validator(mode="after")
    def _not_null(self) -> Self:
        nulls = [
            name
            for name in self.model_fields_set
            if getattr(self, name) is None and name not in ("window", "rollback")
        ]
        if nulls:
            raise ValueError(f"{nulls} cannot be null; leave a field out to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """The given fields, as the store keeps them."""
        given = self.model_dump(mode="json", include=self.model_fields_set)
        changes: dict[str, Any] = {}
        for name, value in given.items():
            if name == "cooldown":
                assert self.cooldown is not None  # not null (``_not_null``)
                changes["cooldown_seconds"] = self.cooldown.total_seconds()
            elif name == "window":
                window = self.window
                changes["window_seconds"] = window.total_seconds() if window is not None else None
            else:
                changes[name] = value
        return changes


class PolicyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    policy_id: str
    tenant_id: str
    model_name: str
    job: dict[str, Any]
    rules: dict[str, Any]
    cooldown_seconds: float
    max_per_day: int
    window_seconds: float | None
    warm_start: bool
    enabled: bool
    rollback: dict[str, Any] | None = Field(description="The rollback rule (null: off).")
    created_at: datetime
    updated_at: datetime


class PoliciesPublic(BaseModel):
    policies: list[PolicyPublic]


class TriggerPublic(BaseModel):
    """A retrain a policy started."""

    model_config = ConfigDict(from_attributes=True)

    trigger_id: str
    job_id: str
    rule: str = Field(description="drift, new_data or schedule.")
    evidence: dict[str, Any] = Field(description="What the rule saw.")
    fired_at: datetime


class TriggersPublic(PagePublic):
    triggers: list[TriggerPublic]
