"""Operator endpoints: apply the retention policy on demand."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep

router = APIRouter(prefix="/ai/training/maintenance", tags=["maintenance"])


class CleanupReport(BaseModel):
    jobs_deleted: int
    logs_deleted: int
    feature_versions_deleted: list[str]
    forecasts_deleted: int


@router.post("/cleanup", response_model=CleanupReport)
async def cleanup(services: ServicesDep, principal: PrincipalDep) -> CleanupReport:
    """Purge expired jobs, log lines, batch forecasts and unreferenced feature-set versions
    now (the orchestrator also does it daily). Admin."""
    principal.require_admin()
    report = await services.orchestrator.cleanup()
    return CleanupReport(
        jobs_deleted=report.jobs,
        logs_deleted=report.logs,
        feature_versions_deleted=list(report.feature_versions),
        forecasts_deleted=len(report.forecasts),
    )
