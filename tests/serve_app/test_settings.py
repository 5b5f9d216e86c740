"""Settings that refuse to start: authentication off beyond loopback, an unusable MLflow
tracking URI."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from actors.settings import OrchestratorSettings
from serve_app.cli import app
from serve_app.settings import ApiSettings


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
