"""Decisions on a model's ``champion`` alias, with their evidence (``ai_promotions``).

A job that promotes its model has it compared with the champion on the same rows
(``pipeline.forecasting.champion``); at the job's completion ``decide`` moves the alias or
not, in that transaction, on that evidence, and only if the champion is still the one
compared with. ``PromotionStore.rollback`` moves the alias back to the version the latest
promotion replaced (by hand, or called by the monitoring when live accuracy falls);
``PromotionStore.stand`` records that a rollback rule's watch found nothing against one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import Database
from db.models import ModelAlias, Promotion, RegisteredModel, TrainingJob
from db.paging import paginate
from db.records import NewModel, Page, PromotionRecord
from db.registry import CHAMPION, point_alias
from domain.clock import utcnow
from domain.errors import ModelNotFound
from domain.promotions import NO_CHAMPION, Decision, NothingToRollBack

logger = logging.getLogger(__name__)

#: Why a rollback asked for by hand was made.
BY_HAND = "rolled back on request"


class PromotionStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def list(
        self, tenant_id: str, model_name: str, page: int, page_size: int
    ) -> Page[PromotionRecord]:
        """One page (1-based) of a model's decisions, newest first.

        Raises:
            ModelNotFound: the tenant has no model of that name.
        """
        query = (
            select(Promotion)
            .where(Promotion.tenant_id == tenant_id, Promotion.model_name == model_name)
            .order_by(Promotion.decided_at.desc(), Promotion.promotion_id)
        )
        async with self._database.transaction() as session:
            await _known(session, tenant_id, model_name)
            found = await paginate(session, query, page, page_size)
        return found.with_items([promotion_record(row) for row in found.items])

    async def rollback(
        self,
        tenant_id: str,
        model_name: str,
        reason: str = BY_HAND,
        *,
        undoing: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> PromotionRecord:
        """Point ``champion`` back at the version the latest promotion (not rolled back
        already) replaced, and store that as a ``rolled_back`` decision with ``evidence``
        (a rollback rule's) beside what it undoes.

        Raises:
            ModelNotFound: the tenant has no model of that name.
            NothingToRollBack: no promotion replaced an earlier champion, the alias was
                moved by hand since the latest one, or that is not ``undoing`` (given).
        """
        name = f"{tenant_id}/{model_name}"
        async with self._database.transaction() as session:
            await _known(session, tenant_id, model_name)
            current = await _champion(session, tenant_id, model_name)
            undone = await _latest_promotion(session, tenant_id, model_name)
            if undone is None:
                raise NothingToRollBack(f"{name} has no promotion to roll back")
            if undoing is not None and undone.promotion_id != undoing:
                raise NothingToRollBack(f"{name}'s promotion {undoing} is no longer the latest")
            if undone.champion_id is None:
                raise NothingToRollBack(
                    f"the latest promotion of {name} ({undone.challenger_id}) had no champion "
                    "before it: nothing to roll back to"
                )
            if current is None or current.model_id != undone.challenger_id:
                raise NothingToRollBack(
                    f"{name}'s champion is {current.model_id if current else 'unset'}, not "
                    f"{undone.challenger_id} as the latest promotion left it (the alias was "
                    "moved by hand since): set the alias by hand"
                )
            if await session.get(RegisteredModel, undone.champion_id) is None:
                raise NothingToRollBack(f"the earlier champion {undone.champion_id} is gone")
            if not await _move_champion(session, undone):
                raise NothingToRollBack(
                    f"{name}'s champion moved while the rollback was decided (another "
                    "rollback, a promotion or a hand): ask again"
                )
            row = Promotion(
                promotion_id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                model_name=model_name,
                challenger_id=undone.challenger_id,
                champion_id=undone.champion_id,
                decision=Decision.ROLLED_BACK.value,
                job_id=None,
                evidence={
                    "undoes": undone.promotion_id,
                    "undone_evidence": undone.evidence,
                    **(evidence or {}),
                },
                reason=reason,
                decided_at=utcnow(),
            )
            session.add(row)
            record = promotion_record(row)
        logger.info("%s: champion rolled back to %s (%s)", name, undone.champion_id, reason)
        return record

    async def stand(
        self, promotion: PromotionRecord, reason: str, *, evidence: Mapping[str, Any]
    ) -> PromotionRecord | None:
        """Store that ``promotion`` stands (a ``stood`` decision with ``evidence``), unless
        that is stored already; the decision stored (None: it was)."""
        row = Promotion(
            promotion_id=str(uuid.uuid4()),
            tenant_id=promotion.tenant_id,
            model_name=promotion.model_name,
            challenger_id=promotion.challenger_id,
            champion_id=promotion.champion_id,
            decision=Decision.STOOD.value,
            job_id=promotion.job_id,
            evidence={"stands": promotion.promotion_id, **evidence},
            reason=reason,
            decided_at=max(utcnow(), promotion.decided_at),
        )
        async with self._database.transaction() as session:
            if await session.scalar(_stood(promotion).limit(1)) is not None:
                return None
            session.add(row)
            return promotion_record(row)

    async def stood(self, promotion: PromotionRecord) -> bool:
        """Whether ``promotion`` was found to stand (``stand``)."""
        async with self._database.transaction() as session:
            return await session.scalar(_stood(promotion).limit(1)) is not None

    async def latest_change(self, tenant_id: str, model_name: str) -> PromotionRecord | None:
        """The latest decision that moved the model's ``champion``: a promotion or a
        rollback (None: none did)."""
        async with self._database.transaction() as session:
            row = await session.scalar(_champion_moves(tenant_id, model_name).limit(1))
        return promotion_record(row) if row is not None else None

    async def rolled_back_from(self, tenant_id: str, model_name: str) -> set[str]:
        """The versions of the model a rollback took ``champion`` away from."""
        query = select(Promotion.challenger_id).where(
            Promotion.tenant_id == tenant_id,
            Promotion.model_name == model_name,
            Promotion.decision == Decision.ROLLED_BACK.value,
        )
        async with self._database.transaction() as session:
            return set((await session.scalars(query)).all())


async def decide(session: AsyncSession, job: TrainingJob, model: NewModel) -> str:
    """Promote ``model`` (registered in ``session``'s transaction, the completion of
    ``job``) or not, on its comparison with the champion, and store the decision; what
    the job's log says of it. Without a champion it is promoted; with one that is not
    the one it was compared with (it moved meanwhile), it is not."""
    current = await _champion(session, model.tenant_id, model.model_name)
    claimed = current is None and await _claim_champion(session, model)
    if current is None and not claimed:  # another job's model claimed it first
        current = await _champion(session, model.tenant_id, model.model_name)
    champion_id = current.model_id if current is not None else None  # before it moves
    comparison = model.comparison
    evidence = dict(comparison.evidence) if comparison is not None else {}
    if current is None:
        decision, reason = Decision.PROMOTED, NO_CHAMPION
    elif comparison is None:
        decision, reason = Decision.KEPT, "the model was not compared with the champion"
    elif comparison.champion_id != current.model_id:
        decision = Decision.KEPT
        reason = (
            f"the champion changed from {comparison.champion_id or 'none'} to "
            f"{current.model_id} after the comparison: no promotion on stale evidence"
        )
        evidence["compared_with"] = comparison.champion_id
    elif comparison.better:
        decision, reason = Decision.PROMOTED, comparison.reason
    else:
        decision, reason = Decision.KEPT, comparison.reason
    if decision is Decision.PROMOTED and not claimed:
        await point_alias(session, model.tenant_id, model.model_name, CHAMPION, model.model_id)
    session.add(
        Promotion(
            promotion_id=str(uuid.uuid4()),
            tenant_id=model.tenant_id,
            model_name=model.model_name,
            challenger_id=model.model_id,
            champion_id=champion_id,
            decision=decision.value,
            job_id=job.job_id,
            evidence=evidence,
            reason=reason,
            # Taken with the alias locked: decisions are ordered as they moved it (a
            # rollback that held the lock meanwhile comes first, as it did).
            decided_at=max(utcnow(), job.updated_at),
        )
    )
    logger.info("%s: %s (%s)", model.model_id, decision.value, reason)
    if decision is Decision.PROMOTED:
        return f"promoted to {CHAMPION}: {reason}"
    return f"{CHAMPION} stays {champion_id}: {reason}"


async def _champion(session: AsyncSession, tenant_id: str, model_name: str) -> ModelAlias | None:
    """The model's ``champion`` alias row, locked (None: it has none)."""
    return await session.scalar(
        select(ModelAlias)
        .where(
            ModelAlias.tenant_id == tenant_id,
            ModelAlias.model_name == model_name,
            ModelAlias.alias == CHAMPION,
        )
        .with_for_update()
    )


async def _move_champion(session: AsyncSession, undone: Promotion) -> bool:
    """Point ``champion`` from what ``undone`` promoted back at what it replaced, if it
    still points there; whether it did. The condition is the lock where a read takes none
    (SQLite's reads run before its write transaction begins)."""
    moved = await session.execute(
        update(ModelAlias)
        .where(
            ModelAlias.tenant_id == undone.tenant_id,
            ModelAlias.model_name == undone.model_name,
            ModelAlias.alias == CHAMPION,
            ModelAlias.model_id == undone.challenger_id,
        )
        .values(model_id=undone.champion_id, updated_at=utcnow())
    )
    return bool(getattr(moved, "rowcount", 0))


async def _claim_champion(session: AsyncSession, model: NewModel) -> bool:
    """Point the model's absent ``champion`` alias at ``model``; False if another
    transaction inserted it meanwhile (its row is committed and visible by then: on
    PostgreSQL the insert waits for it). A missing row cannot be locked, so two first
    champions are told apart by the alias's key, inside a savepoint."""
    try:
        async with session.begin_nested():
            session.add(
                ModelAlias(
                    tenant_id=model.tenant_id,
                    model_name=model.model_name,
                    alias=CHAMPION,
                    model_id=model.model_id,
                    updated_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    return True


def _champion_moves(tenant_id: str, model_name: str) -> Select[Promotion]:
    """The decisions that moved the model's ``champion`` (promotions and rollbacks),
    newest first."""
    return (
        select(Promotion)
        .where(
            Promotion.tenant_id == tenant_id,
            Promotion.model_name == model_name,
            Promotion.decision.in_([Decision.PROMOTED.value, Decision.ROLLED_BACK.value]),
        )
        .order_by(Promotion.decided_at.desc(), Promotion.promotion_id.desc())
    )


def _stood(promotion: PromotionRecord) -> Select[str]:
    """The ``stood`` decisions on ``promotion``: those on its challenger since it (no
    decision moved the alias in between, else it would not be watched)."""
    return select(Promotion.promotion_id).where(
        Promotion.tenant_id == promotion.tenant_id,
        Promotion.model_name == promotion.model_name,
        Promotion.decision == Decision.STOOD.value,
        Promotion.challenger_id == promotion.challenger_id,
        Promotion.decided_at >= promotion.decided_at,
    )


async def _latest_promotion(
    session: AsyncSession, tenant_id: str, model_name: str
) -> Promotion | None:
    """The latest promotion no rollback undid: each rollback, newest first, undoes the
    latest promotion before it not undone yet."""
    rollbacks = 0
    for row in (await session.scalars(_champion_moves(tenant_id, model_name))).all():
        if row.decision == Decision.ROLLED_BACK.value:
            rollbacks += 1
        elif rollbacks:
            rollbacks -= 1
        else:
            return row
    return None


async def _known(session: AsyncSession, tenant_id: str, model_name: str) -> None:
    """Raises ModelNotFound unless the tenant registered a version of ``model_name``."""
    query = select(RegisteredModel.model_id).where(
        RegisteredModel.tenant_id == tenant_id, RegisteredModel.model_name == model_name
    )
    if await session.scalar(query.limit(1)) is None:
        raise ModelNotFound(f"{tenant_id}:{model_name}")


def promotion_record(row: Promotion) -> PromotionRecord:
    return PromotionRecord(
        promotion_id=row.promotion_id,
        tenant_id=row.tenant_id,
        model_name=row.model_name,
        challenger_id=row.challenger_id,
        champion_id=row.champion_id,
        decision=Decision(row.decision),
        job_id=row.job_id,
        evidence=row.evidence,
        reason=row.reason,
        decided_at=row.decided_at,
    )
