"""Training jobs: start, read, list, cancel, retry, logs."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from db.records import JobFilters
from domain.jobs import JobStatus, ModelType
from serve_app.dependencies import ServicesDep
from serve_app.schemas.jobs import (
    JobCancelled,
    JobCreate,
    JobCreated,
    JobPublic,
    JobsPublic,
    LogEntry,
    LogsPublic,
)

router = APIRouter(prefix="/ai/training/jobs", tags=["jobs"])

#: Used until a feature set has completed jobs to learn from.
DEFAULT_ESTIMATE_SECONDS = 30

JobId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/start", status_code=status.HTTP_201_CREATED, response_model=JobCreated)
async def start_job(body: JobCreate, services: ServicesDep) -> JobCreated:
    """Queue a training job; it is stored before this answers."""
    job = await services.orchestrator.submit.remote(body)
    typical = await services.store.typical_duration(job.feature_set)
    return JobCreated(
        job_id=job.job_id,
        status=job.status,
        created_at=job.created_at,
        estimated_duration_seconds=(
            math.ceil(typical) if typical is not None else DEFAULT_ESTIMATE_SECONDS
        ),
        message="Training job queued successfully",
    )


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: JobId, services: ServicesDep) -> JobPublic:
    return JobPublic.model_validate(await services.store.get_job(job_id))


@router.get("", response_model=JobsPublic)
async def list_jobs(
    services: ServicesDep,
    tenant_id: Annotated[str | None, Query(max_length=128)] = None,
    model_type: ModelType | None = None,
    model_name: Annotated[str | None, Query(max_length=128)] = None,
    status: JobStatus | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobsPublic:
    filters = JobFilters(tenant_id, model_type, model_name, status)
    result = await services.store.list_jobs(filters, page, page_size)
    return JobsPublic(
        jobs=[JobPublic.model_validate(j) for j in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )


@router.delete("/{job_id}", response_model=JobCancelled)
async def cancel_job(job_id: JobId, services: ServicesDep) -> JobCancelled:
    """Cancel a queued or running job; a finished one answers 400."""
    job = await services.orchestrator.cancel.remote(job_id)
    return JobCancelled(job_id=job.job_id, status=job.status, message="Training job cancelled")


@router.post("/{job_id}/retry", status_code=status.HTTP_201_CREATED, response_model=JobPublic)
async def retry_job(job_id: JobId, services: ServicesDep) -> JobPublic:
    """Queue a new job with the config of a failed or cancelled one."""
    return JobPublic.model_validate(await services.orchestrator.retry.remote(job_id))


@router.get("/{job_id}/logs", response_model=LogsPublic)
async def job_logs(
    job_id: JobId,
    services: ServicesDep,
    tail: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LogsPublic:
    lines = await services.store.tail_logs(job_id, tail)
    return LogsPublic(
        job_id=job_id, logs=[LogEntry.model_validate(line) for line in lines], count=len(lines)
    )
