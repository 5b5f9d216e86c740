"""Cron schedules: their rows, the runs they fired, and the compare-and-set that records
a fire, so two orchestrators (or one restarted) never record the same fire twice."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from db.database import Database
from db.models import Schedule, TrainingJob
from db.records import NewSchedule, ScheduleRecord
from domain.errors import AlreadyExists, ScheduleNotFound
from domain.jobs import JobStatus

#: Fields a PATCH may change.
EDITABLE = frozenset(
    {"name", "cron", "timezone", "job", "window_seconds", "enabled", "concurrency_policy"}
)


class ScheduleStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, schedule: NewSchedule, now: datetime) -> ScheduleRecord:
        """Raises: AlreadyExists: the tenant has a schedule of that name."""
        row = Schedule(
            schedule_id=str(uuid.uuid4()),
            **_fields(schedule),
            created_at=now,
            updated_at=now,
            last_fire_at=None,
        )
        try:
            async with self._database.transaction() as session:
                session.add(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"schedule {schedule.name!r} already exists") from exc
        return _record(row)

    async def get(self, schedule_id: str, tenant_id: str | None = None) -> ScheduleRecord:
        """Raises: ScheduleNotFound (unknown, or another tenant's when ``tenant_id`` is given)."""
        async with self._database.transaction() as session:
            row = await session.get(Schedule, schedule_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise ScheduleNotFound(schedule_id)
        return _record(row)

    async def search(self, tenant_id: str | None = None) -> list[ScheduleRecord]:
        query = select(Schedule).order_by(Schedule.tenant_id, Schedule.name)
        if tenant_id is not None:
            query = query.where(Schedule.tenant_id == tenant_id)
        async with self._database.transaction() as session:
            return [_record(r) for r in (await session.scalars(query)).all()]

    async def update(
        self, schedule_id: str, changes: Mapping[str, Any], now: datetime
    ) -> ScheduleRecord:
        """Raises: ScheduleNotFound, AlreadyExists (renamed onto another schedule)."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        try:
            async with self._database.transaction() as session:
                row = await session.get(Schedule, schedule_id, with_for_update=True)
                if row is None:
                    raise ScheduleNotFound(schedule_id)
                for name, value in changes.items():
                    setattr(row, name, value)
                row.updated_at = now
        except IntegrityError as exc:
            raise AlreadyExists(f"schedule {changes.get('name')!r} already exists") from exc
        return _record(row)

    async def delete(self, schedule_id: str) -> None:
        """Raises: ScheduleNotFound. The jobs it started keep their ``schedule_id``."""
        async with self._database.transaction() as session:
            row = await session.get(Schedule, schedule_id)
            if row is None:
                raise ScheduleNotFound(schedule_id)
            await session.delete(row)

    async def record_fire(self, schedule_id: str, fire_time: datetime) -> bool:
        """Move ``last_fire_at`` forward to ``fire_time``; False if it was already there."""
        statement = (
            update(Schedule)
            .where(Schedule.schedule_id == schedule_id)
            .where(or_(Schedule.last_fire_at.is_(None), Schedule.last_fire_at < fire_time))
            .values(last_fire_at=fire_time)
        )
        async with self._database.transaction() as session:
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def recent_runs(self, schedule_id: str, limit: int = 5) -> list[str]:
        """The ids of the last jobs it started, newest first."""
        query = (
            select(TrainingJob.job_id)
            .where(TrainingJob.schedule_id == schedule_id)
            .order_by(TrainingJob.created_at.desc())
            .limit(limit)
        )
        async with self._database.transaction() as session:
            return list((await session.scalars(query)).all())

    async def active_runs(self, schedule_id: str) -> int:
        """Its jobs that are queued or running."""
        query = (
            select(func.count())
            .select_from(TrainingJob)
            .where(TrainingJob.schedule_id == schedule_id)
            .where(TrainingJob.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
        )
        async with self._database.transaction() as session:
            return int((await session.execute(query)).scalar_one())


def _fields(schedule: NewSchedule) -> dict[str, Any]:
    return {
        "tenant_id": schedule.tenant_id,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "job": dict(schedule.job),
        "window_seconds": schedule.window_seconds,
        "enabled": schedule.enabled,
        "concurrency_policy": schedule.concurrency_policy,
    }


def _record(row: Schedule) -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id=row.schedule_id,
        tenant_id=row.tenant_id,
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        job=row.job,
        window_seconds=row.window_seconds,
        enabled=row.enabled,
        concurrency_policy=row.concurrency_policy,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_fire_at=row.last_fire_at,
    )
