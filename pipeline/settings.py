"""Where the pipeline finds feature sets and puts model artifacts."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    """``TRAINING_DATA_DIR`` holds ``features/`` and ``artifacts/`` unless they are set apart."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    data_dir: Path = Path("data")
    features_dir: Path | None = None
    artifacts_dir: Path | None = None
    stage_max_retries: int = Field(
        3, ge=0, le=20, description="Times Ray re-runs a stage whose worker or node was lost."
    )

    @field_validator("data_dir", "features_dir", "artifacts_dir")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        """Resolved where the settings are read: Ray workers run in other directories."""
        return path.resolve() if path is not None else None

    @property
    def features_root(self) -> Path:
        return self.features_dir or self.data_dir / "features"

    @property
    def studies_root(self) -> Path:
        """Optuna journals of HPO jobs (one file per job)."""
        return self.data_dir / "studies"

    @property
    def artifacts_root(self) -> Path:
        return self.artifacts_dir or self.data_dir / "artifacts"
