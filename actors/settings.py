"""Orchestrator settings (``TRAINING_`` prefix)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.retention import RetentionPolicy

ORCHESTRATOR_NAME = "orchestrator"
NAMESPACE = "training"


class OrchestratorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    max_concurrent_jobs: int | None = Field(
        None, ge=1, description="Jobs running at once; default: the cluster's CPU count."
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="Starts a job gets before an interrupted one is failed."
    )
    actor_name: str = ORCHESTRATOR_NAME
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
