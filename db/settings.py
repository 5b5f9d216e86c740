"""Database settings: one URL picks the backend.

The URL holds a password in production: it comes from ``TRAINING_DATABASE_URL`` or from a
file (``TRAINING_DATABASE_URL_FILE``, e.g. a Kubernetes Secret mounted as a volume), and
no repr, validation error or message of these settings shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
#: The settings' names, which only this class reads.
DATABASE_SETTINGS = frozenset({"database_url", "database_url_file"})


class DatabaseSettings(BaseSettings):
    """``TRAINING_DATABASE_URL`` or ``TRAINING_DATABASE_URL_FILE`` (its content, stripped),
    not both; otherwise a SQLite file under ``TRAINING_DATA_DIR``."""

    model_config = SettingsConfigDict(
        env_prefix="TRAINING_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path("data")
    database_url: SecretStr | None = None
    database_url_file: Path | None = None
    _url: str = PrivateAttr("")

    @model_validator(mode="after")
    def _one_supported_url(self) -> Self:
        if self.database_url is not None and self.database_url_file is not None:
            raise ValueError("set TRAINING_DATABASE_URL or TRAINING_DATABASE_URL_FILE, not both")
        if self.database_url_file is not None:
            where, url = "TRAINING_DATABASE_URL_FILE", _read(self.database_url_file)
        elif self.database_url is not None:
            where, url = "TRAINING_DATABASE_URL", self.database_url.get_secret_value()
        else:
            self._url = f"sqlite+aiosqlite:///{(self.data_dir / 'training.db').resolve()}"
            return self
        if not url.startswith(tuple(f"{d}://" for d in SUPPORTED_DRIVERS)):
            scheme, separator, _ = url.partition("://")
            got = f"got {scheme!r}" if separator else "it has no scheme"
            raise ValueError(
                f"{where} must start with one of {', '.join(SUPPORTED_DRIVERS)}:// ({got})"
            )
        self._url = url
        return self

    @property
    def url(self) -> str:
        """The URL, password included: pass it on, never show it (``redact_url``)."""
        return self._url


def _read(path: Path) -> str:
    """Raises: ValueError: the file is unreadable or empty (never quoting its content)."""
    try:
        url = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ValueError(f"TRAINING_DATABASE_URL_FILE {path} cannot be read: {reason}") from None
    if not url:
        raise ValueError(f"TRAINING_DATABASE_URL_FILE {path} is empty: write the URL into it")
    return url
