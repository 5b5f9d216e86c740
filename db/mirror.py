"""The MLflow mirror's ledger: what is waiting to be mirrored and what has been.

The service's tables stay the truth; the ledger (``ai_mlflow_mirror``) only remembers
what the mirror has written, so a restart resumes where it stopped and nothing is written
twice. What waits is whatever the tables hold that the ledger does not: finished jobs,
registered models, aliases that point elsewhere than the ledger says, and promotion
decisions.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Select

from db.database import Database
from db.models import MirroredItem, ModelAlias, Promotion, RegisteredModel, TrainingJob
from db.promotions import promotion_record
from db.records import AliasChange, MirrorKind, PromotionRecord, alias_key
from domain.clock import utcnow
from domain.jobs import JobStatus

FINISHED = [s.value for s in JobStatus if s.is_finished()]


def _unmirrored(kind: MirrorKind, key: InstrumentedAttribute[str]) -> ColumnElement[bool]:
    return ~exists().where(and_(MirroredItem.kind == kind.value, MirroredItem.key == key))


def _pending_jobs() -> Select[str]:
    return select(TrainingJob.job_id).where(
        TrainingJob.status.in_(FINISHED), _unmirrored(MirrorKind.JOB, TrainingJob.job_id)
    )


def _pending_models() -> Select[str]:
    return select(RegisteredModel.model_id).where(
        _unmirrored(MirrorKind.MODEL, RegisteredModel.model_id)
    )


def _pending_decisions() -> Select[str]:
    return select(Promotion.promotion_id).where(
        _unmirrored(MirrorKind.DECISION, Promotion.promotion_id)
    )


class MirrorLedger:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def pending_jobs(self, limit: int, skip: Collection[str] = ()) -> list[str]:
        """Finished jobs not mirrored yet, the earliest finished first, but those in ``skip``."""
        query = (
            _pending_jobs()
            .where(TrainingJob.job_id.not_in(skip))
            .order_by(TrainingJob.updated_at, TrainingJob.job_id)
            .limit(limit)
        )
        async with self._database.transaction() as session:
            return list((await session.scalars(query)).all())

    async def pending_models(self, limit: int, skip: Collection[str] = ()) -> list[str]:
        """Registered models not mirrored yet, the oldest first, but those in ``skip``."""
        query = (
            _pending_models()
            .where(RegisteredModel.model_id.not_in(skip))
            .order_by(RegisteredModel.created_at, RegisteredModel.model_id)
            .limit(limit)
        )
        async with self._database.transaction() as session:
            return list((await session.scalars(query)).all())

    async def pending_decisions(
        self, limit: int, skip: Collection[str] = ()
    ) -> list[PromotionRecord]:
        """Promotion decisions not mirrored yet, the oldest first, but those in ``skip``."""
        query = (
            select(Promotion)
            .where(_unmirrored(MirrorKind.DECISION, Promotion.promotion_id))
            .where(Promotion.promotion_id.not_in(skip))
            .order_by(Promotion.decided_at, Promotion.promotion_id)
            .limit(limit)
        )
        async with self._database.transaction() as session:
            return [promotion_record(row) for row in (await session.scalars(query)).all()]

    async def alias_changes(self) -> list[AliasChange]:
        """Aliases whose mirror is missing or points at another version, and mirrored
        aliases the service no longer has."""
        async with self._database.transaction() as session:
            aliases = (await session.scalars(select(ModelAlias))).all()
            mirrored = (
                await session.scalars(
                    select(MirroredItem).where(MirroredItem.kind == MirrorKind.ALIAS.value)
                )
            ).all()
        wanted = {alias_key(a.tenant_id, a.model_name, a.alias): a for a in aliases}
        written = {m.key: m.ref for m in mirrored}
        changes = [
            AliasChange(a.tenant_id, a.model_name, a.alias, a.model_id)
            for key, a in wanted.items()
            if written.get(key) != a.model_id
        ]
        for key in written.keys() - wanted.keys():
            name, alias = key.rsplit("@", 1)
            tenant_id, model_name = name.split(":", 1)
            changes.append(AliasChange(tenant_id, model_name, alias, None))
        return changes

    async def ref(self, kind: MirrorKind, key: str) -> str | None:
        """What the mirror wrote for an item (a run id, a model version), if it has."""
        async with self._database.transaction() as session:
            row = await session.get(MirroredItem, (kind.value, key))
            return row.ref if row is not None else None

    async def record(self, kind: MirrorKind, key: str, ref: str) -> None:
        async with self._database.transaction() as session:
            await session.merge(
                MirroredItem(kind=kind.value, key=key, ref=ref, mirrored_at=utcnow())
            )

    async def forget(self, kind: MirrorKind, key: str) -> None:
        async with self._database.transaction() as session:
            await session.execute(
                delete(MirroredItem).where(MirroredItem.kind == kind.value, MirroredItem.key == key)
            )

    async def backlog(self) -> int:
        """How many items wait: finished jobs, models, alias changes and decisions not
        mirrored."""
        waiting = 0
        async with self._database.transaction() as session:
            for pending in (_pending_jobs(), _pending_models(), _pending_decisions()):
                count = select(func.count()).select_from(pending.subquery())
                waiting += int((await session.execute(count)).scalar_one())
        return waiting + len(await self.alias_changes())
