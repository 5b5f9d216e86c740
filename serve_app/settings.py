"""Settings of the HTTP service and its clients (``TRAINING_`` prefix)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.keys import parse_key


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_upload_mb: int = Field(512, ge=1, description="Largest feature-set upload accepted.")
    max_upload_decompressed_mb: int = Field(
        4096,
        ge=1,
        description="Largest feature-set upload once decompressed: its table as read "
        "(Parquet decompressed, CSV parsed), so a small file cannot unpack into a huge one.",
    )
    max_upload_columns: int = Field(
        1000, ge=2, description="Most columns a feature-set upload may have."
    )
    max_concurrent_uploads: int = Field(
        4,
        ge=1,
        le=1024,
        description="Feature-set uploads one API replica imports at once; one more is "
        "refused (503 with Retry-After).",
    )
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

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Self:
        if not self.auth_enabled and not is_loopback(self.host):
            raise ValueError(
                f"refusing to serve on {self.host} with authentication off: anyone who can "
                "reach it could read and change every tenant's jobs. Set "
                "TRAINING_AUTH_ENABLED=true (with an admin key in TRAINING_ADMIN_KEY_FILE, or "
                "keys from 'trainctl keys create'), or bind to 127.0.0.1"
            )
        return self


class AdminKeySettings(BaseSettings):
    """The operator's admin key, which the service makes valid at every start (``trainctl
    up``, or the Serve config's ``Supervisor`` on KubeRay): a key ``trk_<key id>_<secret>``
    the operator wrote, in a file (``TRAINING_ADMIN_KEY_FILE``, e.g. mode 600) or in
    ``TRAINING_ADMIN_KEY``."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    admin_key_file: Path | None = Field(
        None, description="A file holding the admin key the service ensures at start."
    )
    admin_key: SecretStr | None = Field(
        None, description="The admin key itself (prefer the file: variables show in ps)."
    )

    def key(self) -> SecretStr | None:
        """The key, read and checked; None if neither is set.

        Raises:
            ValueError: both set, the file unreadable, or the key malformed (the message
                never repeats the key).
        """
        if self.admin_key_file is not None and self.admin_key is not None:
            raise ValueError("set TRAINING_ADMIN_KEY_FILE or TRAINING_ADMIN_KEY, not both")
        if self.admin_key_file is not None:
            try:
                text = self.admin_key_file.read_text()
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(
                    f"TRAINING_ADMIN_KEY_FILE {self.admin_key_file} cannot be read: "
                    f"{getattr(error, 'strerror', None) or type(error).__name__}"
                ) from None
            where, token = "TRAINING_ADMIN_KEY_FILE", text.strip()
        elif self.admin_key is not None:
            where, token = "TRAINING_ADMIN_KEY", self.admin_key.get_secret_value().strip()
        else:
            return None
        if not token:
            raise ValueError(f"{where} is empty: write a key trk_<key id>_<secret> into it")
        try:
            parse_key(token)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        return SecretStr(token)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv4-mapped ones too) is this machine's."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)
