"""Settings that refuse to start: authentication off beyond loopback, an unusable MLflow
tracking URI, a bad or clashing admin key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from actors.settings import OrchestratorSettings
from db.database import Database
from db.keys import ApiKeyStore
from domain.auth import Role
from domain.clock import utcnow
from serve_app.cli import app
from serve_app.settings import AdminKeySettings, ApiSettings
from tests.databases import fresh_database


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_auth_may_be_off_on_loopback(host: str) -> None:
    assert ApiSettings(host=host).auth_enabled is False


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])
def test_auth_off_on_another_address_refuses_to_start(host: str) -> None:
    with pytest.raises(ValidationError, match=r"refusing to serve .* with authentication off"):
        ApiSettings(host=host)
    assert ApiSettings(host=host, auth_enabled=True).host == host


@pytest.mark.parametrize("uri", ["http://[::1", "http://", "gopher://tracking:5000"])
def test_an_unusable_mlflow_uri_refuses_to_start_naming_the_variable(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINING_MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ValidationError, match="TRAINING_MLFLOW_TRACKING_URI"):
        OrchestratorSettings()
    result = CliRunner().invoke(app, ["up"])
    assert result.exit_code == 2
    assert "TRAINING_MLFLOW_TRACKING_URI" in result.output


def test_mlflow_is_off_unless_a_tracking_uri_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAINING_MLFLOW_TRACKING_URI", raising=False)
    assert not OrchestratorSettings().mlflow.enabled
    monkeypatch.setenv("TRAINING_MLFLOW_TRACKING_URI", "http://tracking.internal:5000")
    assert OrchestratorSettings().mlflow.tracking_uri == "http://tracking.internal:5000"


SECRET = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "TRAINING_ADMIN_KEY_FILE is empty"),
        ("\n", "TRAINING_ADMIN_KEY_FILE is empty"),
        (SECRET, "reads trk_<key id>_<secret>"),
        (f"trk_admin_{SECRET[:20]}", "must be 32 to 256"),
        (None, "cannot be read: No such file"),
    ],
)
def test_a_bad_admin_key_file_refuses_to_start_and_never_shows_the_secret(
    content: str | None, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "admin.key"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("TRAINING_ADMIN_KEY_FILE", str(path))
    with pytest.raises(ValueError, match=message):
        AdminKeySettings().key()
    result = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "TRAINING_ADMIN_KEY_FILE" in " ".join(result.output.split())
    assert SECRET[:20] not in result.output
    assert not (tmp_path / "training.db").exists()  # refused before touching anything


def test_the_admin_key_comes_from_a_file_or_a_variable_not_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRAINING_ADMIN_KEY_FILE", raising=False)
    monkeypatch.delenv("TRAINING_ADMIN_KEY", raising=False)
    assert AdminKeySettings().key() is None
    path = tmp_path / "admin.key"
    path.write_text(f"  trk_ops_{SECRET}\n")
    monkeypatch.setenv("TRAINING_ADMIN_KEY_FILE", str(path))
    key = AdminKeySettings().key()
    assert key is not None
    assert key.get_secret_value() == f"trk_ops_{SECRET}"
    assert SECRET not in repr(AdminKeySettings()) + repr(key)
    monkeypatch.setenv("TRAINING_ADMIN_KEY", f"trk_ops_{SECRET}")
    with pytest.raises(ValueError, match="not both"):
        AdminKeySettings().key()
    monkeypatch.delenv("TRAINING_ADMIN_KEY_FILE")
    assert AdminKeySettings().key() == key
    monkeypatch.setenv("TRAINING_ADMIN_KEY", "")
    with pytest.raises(ValueError, match="TRAINING_ADMIN_KEY is empty"):
        AdminKeySettings().key()


def test_an_admin_key_whose_id_is_taken_refuses_to_start_before_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def taken() -> str:
        async with fresh_database("sqlite", tmp_path, migrated=True) as url:
            database = Database.from_url(url)
            await ApiKeyStore(database).ensure(f"trk_ops_{SECRET}", "t", Role.ADMIN, utcnow())
            await database.close()
            return url

    url = asyncio.run(taken())
    path = tmp_path / "admin.key"
    path.write_text(f"trk_ops_{SECRET[::-1]}")
    monkeypatch.setenv("TRAINING_ADMIN_KEY_FILE", str(path))
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # no Ray: reaching it would fail otherwise
    result = CliRunner().invoke(app, ["up", "--database-url", url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "API key ops exists with another secret" in " ".join(result.output.split())
    assert SECRET[::-1][:20] not in result.output
    assert not (tmp_path / "features").exists()  # refused before the demo sets
