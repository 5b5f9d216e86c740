"""The caller of each request, from its API key (``Authorization: Bearer`` or ``X-API-Key``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from domain.auth import Principal
from domain.clock import utcnow
from domain.errors import Unauthorized
from serve_app.dependencies import ServicesDep
from serve_app.settings import is_loopback


def api_key_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    """Raises: Unauthorized (no key, or a wrong, expired or revoked one; with keys off, a
    caller from another machine)."""
    if not services.auth_enabled:
        # The settings refuse a non-loopback TRAINING_HOST with keys off, but Serve binds
        # where its own config says (deploy/serve_config.yaml: 0.0.0.0): hold the rule here.
        client = request.client.host if request.client is not None else ""
        if not is_loopback(client):
            raise Unauthorized(
                "authentication is off, so this service answers its own machine only; "
                "the operator must set TRAINING_AUTH_ENABLED=true to serve others"
            )
        return Principal.unauthenticated_admin()
    token = api_key_of(request)
    if token is None:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    return await services.keys.authenticate(token, utcnow())


PrincipalDep = Annotated[Principal, Depends(get_principal)]
