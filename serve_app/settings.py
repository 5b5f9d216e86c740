"""Settings of the HTTP service and its clients (``TRAINING_`` prefix)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_url: str = "http://127.0.0.1:8000"
    max_upload_mb: int = Field(512, ge=1, description="Largest feature-set upload accepted.")
    model_cache_size: int = Field(
        16, ge=1, le=1024, description="Loaded models the prediction deployment keeps."
    )
