"""Settings of the HTTP service and its clients (``TRAINING_`` prefix)."""

from __future__ import annotations

import ipaddress
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_url: str = "http://127.0.0.1:8000"
    max_upload_mb: int = Field(512, ge=1, description="Largest feature-set upload accepted.")
    replicas: int = Field(1, ge=1, le=64, description="API ingress replicas (Ray Serve).")
    max_body_mb: int = Field(
        8, ge=1, le=1024, description="Largest JSON request body (uploads excepted)."
    )
    model_cache_mb: int = Field(
        1024,
        ge=1,
        le=1_048_576,
        description="Megabytes of loaded models (their files' size) a prediction replica keeps.",
    )
    auth_enabled: bool = Field(
        False, description="Require an API key; must be on unless bound to a loopback address."
    )
    api_key: str | None = Field(None, description="The key trainctl sends (TRAINING_API_KEY).")

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Self:
        if not self.auth_enabled and not is_loopback(self.host):
            raise ValueError(
                f"refusing to serve on {self.host} with authentication off: anyone who can "
                "reach it could read and change every tenant's jobs. Set "
                "TRAINING_AUTH_ENABLED=true (and create keys with 'trainctl keys create'), "
                "or bind to 127.0.0.1"
            )
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
