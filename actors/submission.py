"""What a client submits to start a training job (the seed's ``TrainingJobCreate``)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.jobs import JobPriority, ModelType
from domain.names import NAME_PATTERN
from pipeline.config import TrainingConfig

PriorityLabel = Literal["low", "normal", "high", "urgent"]
#: An anomaly job's horizon unless it names one: each row is scored against the forecast
#: made a step before it. At the forecasting default (a day) the residual would be a
#: day-ahead forecast's, and bench/anomaly.py's UCR series then missed its labelled
#: window; a horizon of 1 costs no more (as many lags).
ANOMALY_HORIZON = 1


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=NAME_PATTERN, examples=["tenant-123"])
    model_type: ModelType
    model_name: str = Field(pattern=NAME_PATTERN, examples=["load_forecast"])
    config: TrainingConfig
    priority: PriorityLabel = "normal"

    @model_validator(mode="after")
    def _anomaly_horizon(self) -> Self:
        if self.model_type is ModelType.ANOMALY and "horizon" not in self.config.model_fields_set:
            self.config = self.config.model_copy(update={"horizon": ANOMALY_HORIZON})
        return self

    @property
    def priority_value(self) -> int:
        return int(JobPriority.from_label(self.priority))

    def digest(self) -> str:
        """A digest of what was asked, to tell a retried request from a different one."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()
