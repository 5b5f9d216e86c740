"""What a pipeline run knows about the job it serves."""

from __future__ import annotations

from dataclasses import dataclass

from domain.jobs import ModelType
from pipeline.config import TrainingConfig


@dataclass(frozen=True)
class JobContext:
    """What a pipeline run knows about the job it serves."""

    job_id: str
    tenant_id: str
    model_type: ModelType
    model_name: str
    config: TrainingConfig
