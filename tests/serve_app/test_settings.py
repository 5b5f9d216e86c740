"""Serving with authentication off is allowed on loopback only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serve_app.settings import ApiSettings


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_auth_may_be_off_on_loopback(host: str) -> None:
    assert ApiSettings(host=host).auth_enabled is False


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])
def test_auth_off_on_another_address_refuses_to_start(host: str) -> None:
    with pytest.raises(ValidationError, match=r"refusing to serve .* with authentication off"):
        ApiSettings(host=host)
    assert ApiSettings(host=host, auth_enabled=True).host == host
