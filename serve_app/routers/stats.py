"""Queue and capacity statistics."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.schemas.jobs import StatsPublic

router = APIRouter(prefix="/ai/training", tags=["stats"])


@router.get("/stats", response_model=StatsPublic)
async def training_stats(services: ServicesDep, principal: PrincipalDep) -> StatsPublic:
    """Active and queued jobs of the key's tenant (every tenant's for an admin), and the
    cluster's CPUs: reserved by running work, alive now, and the most it can grow to."""
    stats = await services.orchestrator.stats(principal.scope)
    return StatsPublic(
        active_jobs=stats.active_jobs,
        queued_jobs=stats.queued_jobs,
        total_capacity=stats.cluster_cpus,
        utilization_percent=stats.utilization_percent,
        max_capacity=stats.max_cpus,
        cluster_cpus=stats.cluster_cpus,
        cpus_reserved=stats.cpus_reserved,
        max_concurrent_jobs=stats.max_concurrent_jobs,
    )
