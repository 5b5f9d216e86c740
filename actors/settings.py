"""Orchestrator settings (``TRAINING_`` prefix)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from actors.admission import TenantLimits
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
    stuck_job_seconds: float = Field(
        60,
        gt=0,
        description="A running job nobody follows is reclaimed after this long unchanged.",
    )
    schedule_poll_seconds: float = Field(
        15, gt=0, le=3600, description="How often due cron schedules are fired."
    )
    database_outage_seconds: float = Field(
        600,
        gt=0,
        description="How long the orchestrator retries a write while the database is down.",
    )
    tenant_max_running: int | None = Field(
        None, ge=1, description="Jobs one tenant may run at once (default: no limit)."
    )
    tenant_max_queued: int | None = Field(
        None, ge=0, description="Jobs one tenant may have queued; past it, submits get 429."
    )
    tenant_limits: dict[str, TenantLimits] = Field(
        default_factory=dict,
        description='Per-tenant overrides, e.g. {"big-team": {"max_running": 4}} (JSON).',
    )

    def tenant_defaults(self) -> TenantLimits:
        return TenantLimits(max_running=self.tenant_max_running, max_queued=self.tenant_max_queued)
