"""Settings are validated and resolved where they are read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from db.settings import DatabaseSettings
from pipeline.settings import PipelineSettings


def test_relative_data_dir_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINING_DATA_DIR", "relative")
    settings = PipelineSettings()
    assert str(settings.features_root) == str(tmp_path / "relative" / "features")
    assert str(settings.artifacts_root) == str(tmp_path / "relative" / "artifacts")
    assert DatabaseSettings().url == f"sqlite+aiosqlite:///{tmp_path / 'relative' / 'training.db'}"


def test_database_url_must_name_a_supported_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINING_DATABASE_URL", "mysql://root@localhost/test")
    with pytest.raises(ValidationError, match="must start with one of"):
        DatabaseSettings()
    monkeypatch.setenv("TRAINING_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/test")
    assert DatabaseSettings().url.startswith("postgresql+asyncpg://")


def test_storage_roots_take_uris_of_known_filesystems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINING_FEATURES_DIR", "s3://bucket/features?region=eu-west-1")
    monkeypatch.setenv("TRAINING_ARTIFACTS_DIR", "file:///srv/artifacts")
    settings = PipelineSettings()
    assert str(settings.features_root / "a") == "s3://bucket/features/a?region=eu-west-1"
    assert str(settings.artifacts_root / "t" / "m") == "file:///srv/artifacts/t/m"
    monkeypatch.setenv("TRAINING_ARTIFACTS_DIR", "ftp://host/artifacts")
    with pytest.raises(ValidationError, match="unknown filesystem 'ftp'"):
        PipelineSettings()
