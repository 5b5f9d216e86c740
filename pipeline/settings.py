"""Where the pipeline finds feature sets and puts model artifacts."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.storage import Location

#: The URI schemes ``pyarrow.fs.FileSystem.from_uri`` understands.
URI_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


class PipelineSettings(BaseSettings):
    """``TRAINING_DATA_DIR`` holds ``features/`` and ``artifacts/`` unless they are set apart.

    ``TRAINING_FEATURES_DIR`` and ``TRAINING_ARTIFACTS_DIR`` take a local path or a
    ``pyarrow.fs`` URI (``s3://bucket/features``): on a cluster every node must reach them.
    """

    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    data_dir: Path = Path("data")
    features_dir: str | None = None
    artifacts_dir: str | None = None
    stage_max_retries: int = Field(
        3, ge=0, le=20, description="Times Ray re-runs a stage whose worker or node was lost."
    )

    distributed_min_rows: int = Field(
        5_000_000,
        ge=1,
        description="Jobs on feature sets of at least this many rows train data-parallel "
        "on Ray Train (2 workers) unless they set config.distributed themselves.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        """Resolved where the settings are read: Ray workers run in other directories."""
        return path.resolve()

    @field_validator("features_dir", "artifacts_dir")
    @classmethod
    def _absolute_unless_uri(cls, root: str | None) -> str | None:
        if root is None:
            return None
        scheme, separator, _ = root.partition("://")
        if not separator:
            return str(Path(root).resolve())
        if scheme not in URI_SCHEMES:
            raise ValueError(f"unknown filesystem {scheme!r}; use a path or one of {URI_SCHEMES}")
        return root

    @property
    def features_root(self) -> Location:
        return Location(self.features_dir or str(self.data_dir / "features"))

    @property
    def studies_root(self) -> Path:
        """Optuna journals of HPO jobs (one file per job)."""
        return self.data_dir / "studies"

    @property
    def artifacts_root(self) -> Location:
        return Location(self.artifacts_dir or str(self.data_dir / "artifacts"))
