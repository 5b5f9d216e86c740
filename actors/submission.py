"""What a client submits to start a training job (the seed's ``TrainingJobCreate``)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.jobs import JobPriority, ModelType
from domain.names import NAME_PATTERN
from pipeline.config import TrainingConfig

PriorityLabel = Literal["low", "normal", "high", "urgent"]


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=NAME_PATTERN, examples=["tenant-123"])
    model_type: ModelType
    model_name: str = Field(pattern=NAME_PATTERN, examples=["load_forecast"])
    config: TrainingConfig
    priority: PriorityLabel = "normal"

    @property
    def priority_value(self) -> int:
        return int(JobPriority.from_label(self.priority))

    def digest(self) -> str:
        """A digest of what was asked, to tell a retried request from a different one."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()
