"""Queue and capacity statistics."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.schemas.jobs import StatsPublic

router = APIRouter(prefix="/ai/training", tags=["stats"])


@router.get("/stats", response_model=StatsPublic)
async def training_stats(services: ServicesDep, principal: PrincipalDep) -> StatsPublic:
    """Active and queued jobs of the key's tenant (every tenant's for an admin)."""
    stats = await services.orchestrator.stats(principal.scope)
    return StatsPublic(
        active_jobs=stats.active_jobs,
        queued_jobs=stats.queued_jobs,
        total_capacity=stats.total_capacity,
        utilization_percent=stats.utilization_percent,
        max_capacity=stats.max_capacity,
        cluster_cpus=stats.cluster_cpus,
    )
