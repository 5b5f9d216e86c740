"""Prometheus metrics of the service (text format), from the orchestrator that keeps them."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(services: ServicesDep, principal: PrincipalDep) -> PlainTextResponse:
    """Queue depth by priority and tenant, running jobs, finished jobs by status, queue wait
    and stage duration histograms, HPO trials and database errors. Admin (labels name
    tenants); Prometheus sends the key as a bearer token."""
    principal.require_admin()
    text = await services.orchestrator.metrics_text()
    return PlainTextResponse(text, media_type=CONTENT_TYPE_LATEST)
