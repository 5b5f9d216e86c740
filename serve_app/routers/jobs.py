"""Training jobs: start, read, list, cancel, retry, logs."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from db.idempotency import SERVICE_KEY_PREFIXES
from db.records import JobFilters, JobRecord
from domain.auth import Principal
from domain.errors import InvalidRequest, JobNotFound, ServiceUnavailable, TenantNotFound
from domain.jobs import JobStatus, ModelType
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import NameFilter, NameQuery, ResourceId
from serve_app.schemas.jobs import (
    JobCancelled,
    JobCreate,
    JobCreated,
    JobPublic,
    JobsPublic,
    LogEntry,
    LogsPublic,
    QueuedJobsCancelled,
)

router = APIRouter(prefix="/ai/training/jobs", tags=["jobs"])

#: Used until a feature set has completed jobs to learn from.
DEFAULT_ESTIMATE_SECONDS = 30

JobId = ResourceId


@router.post(
    "/start",
    status_code=status.HTTP_201_CREATED,
    response_model=JobCreated,
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the original job."},
        409: {"description": "The Idempotency-Key was used with a different body."},
        429: {"description": "The tenant's queue is full; see Retry-After."},
    },
)
async def start_job(
    body: JobCreate,
    response: Response,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Retries with the same key and body return the same job (24 h).",
        ),
    ] = None,
) -> JobCreated:
    """Queue a training job; it is stored before this answers."""
    principal.require_write(body.tenant_id)
    if idempotency_key is not None and idempotency_key.startswith(SERVICE_KEY_PREFIXES):
        raise InvalidRequest(
            "header.idempotency-key",
            f"keys beginning {' or '.join(map(repr, SERVICE_KEY_PREFIXES))} are the service's own",
        )
    job, created = await services.orchestrator.submit_once(body, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    typical = await services.store.typical_duration(job.tenant_id, job.feature_set)
    return JobCreated(
        job_id=job.job_id,
        status=job.status,
        created_at=job.created_at,
        estimated_duration_seconds=(
            math.ceil(typical) if typical is not None else DEFAULT_ESTIMATE_SECONDS
        ),
        message=(
            "Training job queued successfully"
            if created
            else "This Idempotency-Key already started this job"
        ),
    )


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: JobId, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """The job and the resources it holds; a queued one also says where it stands and
    why it waits, a running one how many CPUs it holds now."""
    job = JobPublic.model_validate(await visible_job(job_id, services, principal))
    if job.status is JobStatus.QUEUED:
        tenant_only = not principal.is_admin  # what other tenants queued is theirs to know
        place = (await services.orchestrator.queue_statuses([job_id], tenant_only)).get(job_id)
        if place is not None:
            job.queue_position, job.waiting_reason = place.position, place.waiting_reason
    elif job.status is JobStatus.RUNNING:
        job.held_cpus = await services.orchestrator.held_cpus(job_id)
    return job


@router.get("", response_model=JobsPublic)
async def list_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: NameFilter = None,
    model_type: ModelType | None = None,
    model_name: NameFilter = None,
    status: JobStatus | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobsPublic:
    """Jobs, newest first; a queued one says where it stands and why it waits."""
    filters = JobFilters(principal.tenant_filter(tenant_id), model_type, model_name, status)
    result = await services.store.list_jobs(filters, page, page_size)
    listed = JobsPublic.of(result)
    queued = [job.job_id for job in listed.jobs if job.status is JobStatus.QUEUED]
    if queued:
        try:
            places = await services.orchestrator.queue_statuses(
                queued, tenant_only=not principal.is_admin
            )
        except ServiceUnavailable:  # the list is the database's: it goes without places
            places = {}
        for job in listed.jobs:
            if (place := places.get(job.job_id)) is not None:
                job.queue_position, job.waiting_reason = place.position, place.waiting_reason
    return listed


@router.delete("", response_model=QueuedJobsCancelled)
async def cancel_queued_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: NameQuery,
    status: Annotated[
        Literal["queued"], Query(description="Only queued jobs can be cancelled in bulk.")
    ],
) -> QueuedJobsCancelled:
    """Cancel all of a tenant's queued jobs in one transaction (running ones go on); a
    tenant's member for its own tenant, an admin for any."""
    if not principal.sees(tenant_id):
        raise TenantNotFound(tenant_id)
    principal.require_write(tenant_id)
    job_ids = await services.orchestrator.cancel_queued(tenant_id)
    return QueuedJobsCancelled(tenant_id=tenant_id, cancelled=len(job_ids), job_ids=job_ids)


@router.delete("/{job_id}", response_model=JobCancelled)
async def cancel_job(job_id: JobId, services: ServicesDep, principal: PrincipalDep) -> JobCancelled:
    """Cancel a queued or running job; a finished one answers 400."""
    principal.require_write((await visible_job(job_id, services, principal)).tenant_id)
    job = await services.orchestrator.cancel(job_id)
    return JobCancelled(job_id=job.job_id, status=job.status, message="Training job cancelled")


@router.post("/{job_id}/retry", status_code=status.HTTP_201_CREATED, response_model=JobPublic)
async def retry_job(job_id: JobId, services: ServicesDep, principal: PrincipalDep) -> JobPublic:
    """Queue a new job with the config of a failed or cancelled one."""
    principal.require_write((await visible_job(job_id, services, principal)).tenant_id)
    return JobPublic.model_validate(await services.orchestrator.retry(job_id))


@router.get("/{job_id}/logs", response_model=LogsPublic)
async def job_logs(
    job_id: JobId,
    services: ServicesDep,
    principal: PrincipalDep,
    tail: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LogsPublic:
    await visible_job(job_id, services, principal)
    lines = await services.store.tail_logs(job_id, tail)
    return LogsPublic(
        job_id=job_id, logs=[LogEntry.model_validate(line) for line in lines], count=len(lines)
    )


async def visible_job(job_id: str, services: ServicesDep, principal: Principal) -> JobRecord:
    """The job, if the caller's tenant may see it.

    Raises:
        JobNotFound: no such job, or another tenant's (indistinguishable on purpose).
    """
    job = await services.store.get_job(job_id)
    if not principal.sees(job.tenant_id):
        raise JobNotFound(job_id)
    return job
