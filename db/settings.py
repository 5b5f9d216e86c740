"""Database settings: one URL picks the backend."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class DatabaseSettings(BaseSettings):
    """``TRAINING_DATABASE_URL`` wins; otherwise a SQLite file under ``TRAINING_DATA_DIR``."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _supported_driver(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(tuple(f"{d}://" for d in SUPPORTED_DRIVERS)):
            raise ValueError(
                f"TRAINING_DATABASE_URL must start with one of {', '.join(SUPPORTED_DRIVERS)}:// "
                f"(got {url.split('://', 1)[0]!r})"
            )
        return url

    @property
    def url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'training.db').resolve()}"
