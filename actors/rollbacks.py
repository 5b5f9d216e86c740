"""Automatic rollbacks on the orchestrator: a new champion watched against the champion it
replaced, while its model's policy asks for it, and rolled back when the rule says so
(``domain.rollbacks``).

A promotion is watched while all of these hold: the model's policy is enabled and has a
``rollback`` rule; the latest decision that moved ``champion`` is that promotion (after
any rollback, by hand or not, nothing is watched until the next promotion: a rollback is
never undone automatically, so rollbacks cannot loop); it replaced a champion, which is
still registered and was never itself rolled back from; ``champion`` is still its model;
and it has not been found to stand: a ``stood`` decision, stored with its evidence when
the rule's last look finds nothing against it, ends its watch for good (an edit of the
rule later does not reopen it). Meanwhile the monitoring
has the previous champion forecast the new one's scored forecasts (``shadow_for``), and
``check`` asks the rule and rolls back through ``PromotionStore.rollback``: the decision,
its reason (both scores, the days, the confidence) and evidence are stored as a
``rolled_back`` promotion, and the promoting job's log says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from actors.policies import WriteLogs
from db.monitoring import MonitorStore
from db.policies import PolicyRecord, PolicyStore
from db.promotions import PromotionStore
from db.records import ModelRecord, NewLog, PromotionRecord
from db.registry import CHAMPION, ModelRegistry
from domain.errors import AliasNotFound, ModelNotFound
from domain.jobs import LogLevel
from domain.promotions import Decision, NothingToRollBack
from domain.rollbacks import (
    Outcome,
    PairedForecast,
    RollbackRule,
    Verdict,
    decide,
    paired_forecast,
)
from pipeline.monitoring.shadow import ShadowModel

logger = logging.getLogger(__name__)

#: Shadowed evaluations read per check, at most: a rule's last look comes by then (4 x
#: 100 forecasts, over 4 x 7 days at a confidence of 0.99), or, for forecasts made every
#: few minutes, this is its last look.
SHADOWS_READ = 5000
#: The log stage of the line a rollback writes in the promoting job's log.
STAGE = "rollback"


@dataclass(frozen=True)
class Watch:
    """A promotion under its policy's rollback rule."""

    policy: PolicyRecord
    rule: RollbackRule
    promotion: PromotionRecord
    previous: ModelRecord
    paired: list[PairedForecast]
    #: Shadowed forecasts the previous champion could not be paired on.
    unpaired: int
    #: Whether the check read as many shadowed forecasts as it reads.
    read_all: bool

    def outcome(self) -> Outcome:
        return decide(self.rule, self.paired, self.unpaired, last_read=self.read_all)

    @property
    def open(self) -> bool:
        """Whether forecasts are still paired for it (before the rule's last look)."""
        return self.outcome().verdict is Verdict.WAIT


class Rollbacks:
    def __init__(
        self,
        policies: PolicyStore,
        monitoring: MonitorStore,
        promotions: PromotionStore,
        registry: ModelRegistry,
        *,
        write_logs: WriteLogs,
    ) -> None:
        self._policies = policies
        self._monitoring = monitoring
        self._promotions = promotions
        self._registry = registry
        self._write_logs = write_logs

    async def shadow_for(self, model: ModelRecord) -> ShadowModel | None:
        """The champion to forecast ``model``'s scored forecasts beside it (None: its
        promotion is not watched, or no longer)."""
        policy = await self._policies.of_model(model.tenant_id, model.model_name)
        watch = await self._watch(policy) if policy is not None else None
        if watch is None or not watch.open or watch.promotion.challenger_id != model.model_id:
            return None
        return ShadowModel(
            watch.promotion.promotion_id,
            watch.previous.model_id,
            watch.previous.artifact_uri,
            watch.promotion.decided_at,
        )

    async def check(self, now: datetime) -> list[PromotionRecord]:
        """Roll back every watched champion its rule finds worse; the rollbacks."""
        done = []
        for policy in await self._policies.search():
            try:
                watch = await self._watch(policy)
                rolled = await self._judge(watch, now) if watch is not None else None
            except Exception:
                logger.exception("policy %s's rollback rule could not be checked", policy.policy_id)
                continue
            if rolled is not None:
                done.append(rolled)
        return done

    async def _watch(self, policy: PolicyRecord) -> Watch | None:
        if not policy.enabled or policy.rollback is None:
            return None
        tenant_id, model_name = policy.tenant_id, policy.model_name
        promotion = await self._promotions.latest_change(tenant_id, model_name)
        if (
            promotion is None
            or promotion.decision is not Decision.PROMOTED
            or promotion.champion_id is None
        ):
            return None
        try:
            champion = await self._registry.resolve(tenant_id, model_name, CHAMPION)
            previous = await self._registry.get(promotion.champion_id)
        except (AliasNotFound, ModelNotFound):
            return None
        if champion.model_id != promotion.challenger_id:
            return None  # the alias was moved by hand since
        if previous.model_id in await self._promotions.rolled_back_from(tenant_id, model_name):
            return None
        if await self._promotions.stood(promotion):
            return None
        rule = RollbackRule(**policy.rollback)
        shadows = await self._monitoring.shadowed(promotion.promotion_id, SHADOWS_READ)
        paired = [paired_forecast(key, shadow, rule.metric) for key, shadow in shadows]
        found = [p for p in paired if p is not None]
        # The forecasts it cannot be paired on; a failure this time (a storage blip) is
        # no verdict on whether it can.
        unpaired = sum(
            1
            for (_, shadow), pair in zip(shadows, paired, strict=True)
            if pair is None and not str(shadow.get("not_compared", "")).startswith("failed")
        )
        read_all = len(shadows) >= SHADOWS_READ
        return Watch(policy, rule, promotion, previous, found, unpaired, read_all)

    async def _judge(self, watch: Watch, now: datetime) -> PromotionRecord | None:
        outcome = watch.outcome()
        promotion = watch.promotion
        name = f"{promotion.tenant_id}/{promotion.model_name}"
        evidence = {**outcome.evidence, "policy_id": watch.policy.policy_id}
        if outcome.verdict is Verdict.STANDS:
            await self._promotions.stand(promotion, outcome.reason, evidence={"live": evidence})
            logger.info("%s: %s", name, outcome.reason)
            return None
        if outcome.verdict is not Verdict.ROLL_BACK:
            return None
        try:
            record = await self._promotions.rollback(
                promotion.tenant_id,
                promotion.model_name,
                outcome.reason,
                undoing=promotion.promotion_id,
                evidence={"live": evidence},
            )
        except NothingToRollBack as exc:  # the alias moved meanwhile
            logger.info("%s: no automatic rollback: %s", name, exc)
            return None
        if promotion.job_id is not None:
            message = (
                f"{CHAMPION} rolled back from {promotion.challenger_id} to "
                f"{promotion.champion_id} by retrain policy {watch.policy.policy_id}: "
                f"{outcome.reason}"
            )
            await self._write_logs([NewLog(promotion.job_id, LogLevel.INFO, message, now, STAGE)])
        return record
