"""With keys off the service answers its own machine only: the settings refuse a
non-loopback ``TRAINING_HOST``, and a request that reaches it from elsewhere anyway (Serve
binds where its own config says, 0.0.0.0 in deploy/serve_config.yaml) is refused."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from ray import serve

from serve_app.app import create_app
from serve_app.deployment import APP_NAME, connect
from serve_app.service import api_config
from serve_app.settings import is_loopback
from tests.serve_app.conftest import Deployed


@pytest.mark.parametrize(
    ("client", "status"),
    [("127.0.0.1", 200), ("::1", 200), ("::ffff:127.0.0.1", 200), ("10.0.0.7", 401)],
)
async def test_keys_off_answers_loopback_callers_only(
    deployed: Deployed, client: str, status: int
) -> None:
    config = dataclasses.replace(api_config(deployed.config), auth_enabled=False)
    services = connect(config, serve.get_deployment_handle("ModelServer", APP_NAME))
    transport = httpx.ASGITransport(app=create_app(services), client=(client, 40_000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
            response = await http.get("/ai/training/jobs")
    finally:
        await services.store.database.close()
    assert response.status_code == status, response.text
    if status == 401:
        assert "TRAINING_AUTH_ENABLED" in response.json()["detail"]


def test_loopback_names_and_addresses() -> None:
    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.1.2.3", "::1"]))
    assert is_loopback("::ffff:127.0.0.1")
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.7", "::ffff:10.0.0.7", "example.com"]))
