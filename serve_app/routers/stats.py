"""Queue and capacity statistics."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.dependencies import ServicesDep
from serve_app.schemas.jobs import StatsPublic

router = APIRouter(prefix="/ai/training", tags=["stats"])


@router.get("/stats", response_model=StatsPublic)
async def training_stats(services: ServicesDep) -> StatsPublic:
    stats = await services.orchestrator.stats.remote()
    return StatsPublic(
        active_jobs=stats.active_jobs,
        queued_jobs=stats.queued_jobs,
        total_capacity=stats.total_capacity,
        utilization_percent=stats.utilization_percent,
    )
