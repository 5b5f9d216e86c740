"""Retrain policies' rows and the retrains they started."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from db.database import Database
from db.models import RetrainPolicy, RetrainTrigger, TrainingJob
from db.paging import paginate
from db.records import Page
from domain.errors import AlreadyExists, PolicyNotFound
from domain.jobs import JobStatus


@dataclass(frozen=True)
class NewPolicy:
    tenant_id: str
    model_name: str
    job: dict[str, Any]
    rules: dict[str, Any]
    cooldown_seconds: float
    max_per_day: int
    window_seconds: float | None
    warm_start: bool
    enabled: bool
    #: The rollback rule (``domain.rollbacks.RollbackRule``'s fields; None: off).
    rollback: dict[str, Any] | None = None
    policy_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class PolicyRecord(NewPolicy):
    created_at: datetime = field(kw_only=True)
    updated_at: datetime = field(kw_only=True)
    checked_at: datetime | None = field(kw_only=True)


@dataclass(frozen=True)
class TriggerRecord:
    trigger_id: str
    policy_id: str
    job_id: str
    rule: str
    evidence: dict[str, Any]
    fired_at: datetime


#: What a PATCH may change.
EDITABLE = frozenset(
    {
        "job",
        "rules",
        "cooldown_seconds",
        "max_per_day",
        "window_seconds",
        "warm_start",
        "enabled",
        "rollback",
    }
)


class PolicyStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, policy: NewPolicy, now: datetime) -> PolicyRecord:
        """Raises: Conflict: the model already has a policy."""
        row = RetrainPolicy(
            **{f.name: getattr(policy, f.name) for f in fields(NewPolicy)},
            created_at=now,
            updated_at=now,
            checked_at=now,
        )
        try:
            async with self._database.transaction() as session:
                session.add(row)
        except IntegrityError as exc:
            raise AlreadyExists(
                f"{policy.tenant_id}/{policy.model_name} already has a retrain policy; "
                "change it (PATCH) instead"
            ) from exc
        return _record(row)

    async def get(self, policy_id: str, tenant_id: str | None = None) -> PolicyRecord:
        """Raises: PolicyNotFound (unknown, or another tenant's when ``tenant_id`` is given)."""
        async with self._database.transaction() as session:
            row = await session.get(RetrainPolicy, policy_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise PolicyNotFound(policy_id)
        return _record(row)

    async def of_model(self, tenant_id: str, model_name: str) -> PolicyRecord | None:
        """The model's policy (None: it has none)."""
        query = select(RetrainPolicy).where(
            RetrainPolicy.tenant_id == tenant_id, RetrainPolicy.model_name == model_name
        )
        async with self._database.transaction() as session:
            row = await session.scalar(query)
        return _record(row) if row is not None else None

    async def search(self, tenant_id: str | None = None) -> list[PolicyRecord]:
        query = select(RetrainPolicy).order_by(RetrainPolicy.tenant_id, RetrainPolicy.model_name)
        if tenant_id is not None:
            query = query.where(RetrainPolicy.tenant_id == tenant_id)
        async with self._database.transaction() as session:
            return [_record(row) for row in (await session.scalars(query)).all()]

    async def update(self, policy_id: str, changes: dict[str, Any], now: datetime) -> PolicyRecord:
        """Raises: PolicyNotFound."""
        async with self._database.transaction() as session:
            row = await session.get(RetrainPolicy, policy_id, with_for_update=True)
            if row is None:
                raise PolicyNotFound(policy_id)
            for name, value in changes.items():
                if name not in EDITABLE:
                    raise ValueError(f"{name!r} cannot be changed")
                setattr(row, name, value)
            row.updated_at = now
        return _record(row)

    async def delete(self, policy_id: str) -> None:
        """Raises: PolicyNotFound."""
        statement = delete(RetrainPolicy).where(RetrainPolicy.policy_id == policy_id)
        async with self._database.transaction() as session:
            result = await session.execute(statement)
        if not getattr(result, "rowcount", 0):
            raise PolicyNotFound(policy_id)

    async def checked(self, policy_id: str, until: datetime) -> None:
        """Its schedule was looked at up to ``until``."""
        async with self._database.transaction() as session:
            row = await session.get(RetrainPolicy, policy_id)
            if row is not None:
                row.checked_at = until

    async def record_trigger(
        self, policy_id: str, job_id: str, rule: str, evidence: dict[str, Any], now: datetime
    ) -> TriggerRecord:
        row = RetrainTrigger(
            trigger_id=str(uuid.uuid4()),
            policy_id=policy_id,
            job_id=job_id,
            rule=rule,
            evidence=evidence,
            fired_at=now,
        )
        async with self._database.transaction() as session:
            session.add(row)
        return _trigger(row)

    async def fired_since(self, policy_id: str, since: datetime) -> list[datetime]:
        """When its retrains fired from ``since`` on, the latest last."""
        query = (
            select(RetrainTrigger.fired_at)
            .where(RetrainTrigger.policy_id == policy_id, RetrainTrigger.fired_at >= since)
            .order_by(RetrainTrigger.fired_at)
        )
        async with self._database.transaction() as session:
            return list((await session.scalars(query)).all())

    async def running(self, policy_id: str) -> bool:
        """Whether a retrain it started is queued or running."""
        query = (
            select(TrainingJob.job_id)
            .join(RetrainTrigger, RetrainTrigger.job_id == TrainingJob.job_id)
            .where(
                RetrainTrigger.policy_id == policy_id,
                TrainingJob.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            )
            .limit(1)
        )
        async with self._database.transaction() as session:
            return (await session.scalar(query)) is not None

    async def triggers(self, policy_id: str, page: int, page_size: int) -> Page[TriggerRecord]:
        """The retrains it started, the latest first."""
        query = (
            select(RetrainTrigger)
            .where(RetrainTrigger.policy_id == policy_id)
            .order_by(RetrainTrigger.fired_at.desc(), RetrainTrigger.trigger_id)
        )
        async with self._database.transaction() as session:
            found = await paginate(session, query, page, page_size)
        return found.with_items([_trigger(row) for row in found.items])


def _record(row: RetrainPolicy) -> PolicyRecord:
    return PolicyRecord(
        tenant_id=row.tenant_id,
        model_name=row.model_name,
        job=row.job,
        rules=row.rules,
        cooldown_seconds=row.cooldown_seconds,
        max_per_day=row.max_per_day,
        window_seconds=row.window_seconds,
        warm_start=row.warm_start,
        enabled=row.enabled,
        rollback=row.rollback,
        policy_id=row.policy_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        checked_at=row.checked_at,
    )


def _trigger(row: RetrainTrigger) -> TriggerRecord:
    return TriggerRecord(
        trigger_id=row.trigger_id,
        policy_id=row.policy_id,
        job_id=row.job_id,
        rule=row.rule,
        evidence=row.evidence,
        fired_at=row.fired_at,
    )
