"""Cron schedules: create, list, show (with next fires and recent runs), edit, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from db.records import NewSchedule, ScheduleRecord
from domain.auth import Principal
from domain.clock import utcnow
from domain.cron import next_fires
from domain.errors import InvalidRequest
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import NameFilter, ResourceId
from serve_app.schemas.schedules import (
    ScheduleCreate,
    SchedulePatch,
    SchedulePublic,
    SchedulesPublic,
)

router = APIRouter(prefix="/ai/training/schedules", tags=["schedules"])

ScheduleId = ResourceId
#: Upcoming fire times shown per schedule.
SHOWN_FIRES = 3


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SchedulePublic)
async def create_schedule(
    body: ScheduleCreate, services: ServicesDep, principal: PrincipalDep
) -> SchedulePublic:
    """Start ``job`` at every fire time of ``cron`` (in ``timezone``)."""
    principal.require_write(body.job.tenant_id)
    schedule = NewSchedule(
        tenant_id=body.job.tenant_id,
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        job=body.job.model_dump(mode="json"),
        window_seconds=body.window.total_seconds(),
        enabled=body.enabled,
        concurrency_policy=body.concurrency_policy,
    )
    record = await services.orchestrator.create_schedule(schedule)
    return await _public(record, services)


@router.get("", response_model=SchedulesPublic)
async def list_schedules(
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: NameFilter = None,
) -> SchedulesPublic:
    records = await services.schedules.search(principal.tenant_filter(tenant_id))
    return SchedulesPublic(schedules=[await _public(r, services) for r in records])


@router.get("/{schedule_id}", response_model=SchedulePublic)
async def get_schedule(
    schedule_id: ScheduleId, services: ServicesDep, principal: PrincipalDep
) -> SchedulePublic:
    return await _public(await services.schedules.get(schedule_id, principal.scope), services)


@router.patch("/{schedule_id}", response_model=SchedulePublic)
async def update_schedule(
    schedule_id: ScheduleId, body: SchedulePatch, services: ServicesDep, principal: PrincipalDep
) -> SchedulePublic:
    """Enable, disable or edit; only the fields given change (a schedule's job keeps its
    tenant: 422)."""
    schedule = await _writable(schedule_id, services, principal)
    if body.job is not None and body.job.tenant_id != schedule.tenant_id:
        raise InvalidRequest(
            "job.tenant_id",
            f"a schedule's job keeps its tenant ({schedule.tenant_id!r}); make a new schedule",
        )
    record = await services.orchestrator.update_schedule(schedule_id, body.changes())
    return await _public(record, services)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(
    schedule_id: ScheduleId, services: ServicesDep, principal: PrincipalDep
) -> Response:
    await _writable(schedule_id, services, principal)
    await services.orchestrator.delete_schedule(schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _writable(
    schedule_id: str, services: ServicesDep, principal: Principal
) -> ScheduleRecord:
    """Raises: ScheduleNotFound (unknown or another tenant's), Forbidden (read-only key)."""
    schedule = await services.schedules.get(schedule_id, principal.scope)
    principal.require_write(schedule.tenant_id)
    return schedule


async def _public(record: ScheduleRecord, services: ServicesDep) -> SchedulePublic:
    public = SchedulePublic.model_validate(record)
    public.next_fires = next_fires(record.cron, record.timezone, utcnow(), SHOWN_FIRES)
    public.recent_job_ids = await services.schedules.recent_runs(record.schedule_id)
    return public
