"""Orchestrator settings (``TRAINING_`` prefix)."""

from __future__ import annotations

import importlib.util
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actors.admission import TenantLimits
from db.retention import RetentionPolicy

ORCHESTRATOR_NAME = "orchestrator"
NAMESPACE = "training"


#: Tracking URI schemes MLflow's client understands (no scheme: a local directory).
MLFLOW_SCHEMES = ("http", "https", "file", "databricks", "sqlite", "postgresql", "mysql", "")


class MlflowSettings(BaseSettings):
    """The MLflow mirror (``TRAINING_MLFLOW_`` prefix): off unless a tracking URI is set."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_MLFLOW_", extra="ignore")

    tracking_uri: str | None = Field(
        None, description="MLflow tracking server to mirror runs and models into."
    )
    experiment_prefix: str = Field(
        "", max_length=64, description="Prefix of the MLflow experiment and model names."
    )
    poll_seconds: float = Field(
        5, gt=0, le=3600, description="How often the mirror looks for what to mirror."
    )
    request_timeout_seconds: float = Field(
        10, gt=0, le=600, description="How long one call to the tracking server may take."
    )

    @field_validator("tracking_uri")
    @classmethod
    def _parsable(cls, uri: str | None) -> str | None:
        if uri is None or uri == "":
            return None
        try:
            parts = urlsplit(uri)
        except ValueError as error:
            raise ValueError(
                f"TRAINING_MLFLOW_TRACKING_URI {uri!r} cannot be parsed: {error}"
            ) from None
        if parts.scheme not in MLFLOW_SCHEMES:
            raise ValueError(
                f"TRAINING_MLFLOW_TRACKING_URI {uri!r} has an unknown scheme "
                f"{parts.scheme!r}; use one of http, https, file, databricks, sqlite, ..."
            )
        if parts.scheme in ("http", "https") and not parts.hostname:
            raise ValueError(f"TRAINING_MLFLOW_TRACKING_URI {uri!r} names no host")
        if importlib.util.find_spec("mlflow") is None:
            raise ValueError(
                "TRAINING_MLFLOW_TRACKING_URI is set but MLflow's client is not installed: "
                "pip install 'ray-training-service[mlflow]'"
            )
        return uri

    @property
    def enabled(self) -> bool:
        return self.tracking_uri is not None


class OrchestratorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    max_concurrent_jobs: int | None = Field(
        None,
        ge=1,
        description="The operator's cap on jobs running at once; without it, the CPUs "
        "the jobs hold are the only limit.",
    )
    max_cluster_cpus: int | None = Field(
        None,
        ge=1,
        description="The most CPUs the cluster can grow to, when its autoscaler's "
        "configured maximum cannot be read; jobs up to it are queued, not refused.",
    )
    max_node_cpus: int | None = Field(
        None,
        ge=1,
        description="The CPUs of the largest node the autoscaler can add, when its "
        "config cannot be read (KubeRay); a job with a larger task is refused.",
    )
    max_preemptions: int = Field(
        3,
        ge=0,
        le=1000,
        description="How often one search's trial slots may be taken back for an urgent "
        "or high job (0: never).",
    )
    placement_timeout_seconds: float = Field(
        300,
        gt=0,
        description="How long a started job's reservation may take to be placed before "
        "it goes back to the queue.",
    )
    forecast_cpus: int = Field(
        2, ge=1, le=256, description="CPUs a batch forecast holds: its chunks at once."
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
    monitor_seconds: float = Field(
        60,
        gt=0,
        le=24 * 3600,
        description="How often stored forecasts are scored against the actuals that arrived.",
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
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    tenant_limits: dict[str, TenantLimits] = Field(
        default_factory=dict,
        description='Per-tenant overrides, e.g. {"big-team": {"max_running": 4}} (JSON).',
    )

    def tenant_defaults(self) -> TenantLimits:
        return TenantLimits(max_running=self.tenant_max_running, max_queued=self.tenant_max_queued)

    @property
    def mirror_name(self) -> str:
        """The MLflow mirror's actor name, beside this orchestrator."""
        return f"{self.actor_name}-mlflow-mirror"
