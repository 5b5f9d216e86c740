"""The orchestrator's commands on what jobs leave behind: model aliases and rollbacks,
batch forecasts and logged predictions, cron schedules, monitoring and retrain policies.

A base of ``JobOrchestrator`` (the actor exposes these methods as its own), kept apart
so that the actor's module holds the queue and the job lifecycle; each command hands
over to the component that owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from actors.aftercare import Aftercare
from actors.forecasts import ForecastRunner
from actors.intake import Intake
from actors.scheduler import Scheduler
from db.policies import NewPolicy, PolicyRecord
from db.promotions import PromotionStore
from db.records import (
    ForecastRecord,
    ModelRecord,
    NewForecast,
    NewSchedule,
    PromotionRecord,
    ScheduleRecord,
)
from db.registry import CHAMPION, ModelRegistry
from db.schedules import ScheduleStore
from domain.errors import AliasNotFound
from pipeline.promotion import ChampionRef


class ModelCommands:
    """The commands; ``JobOrchestrator`` builds the components they hand over to."""

    _registry: ModelRegistry
    _promotions: PromotionStore
    _forecasts: ForecastRunner
    _intake: Intake
    _schedules: ScheduleStore
    _scheduler: Scheduler
    _aftercare: Aftercare
    _clock: Callable[[], datetime]

    async def set_alias(
        self, tenant_id: str, model_name: str, alias: str, version: str
    ) -> ModelRecord:
        """Point a model alias at a version. Raises: ModelNotFound."""
        return await self._registry.set_alias(tenant_id, model_name, alias, version)

    async def delete_alias(self, tenant_id: str, model_name: str, alias: str) -> None:
        """Raises: AliasNotFound."""
        await self._registry.delete_alias(tenant_id, model_name, alias)

    async def rollback(self, tenant_id: str, model_name: str, reason: str) -> PromotionRecord:
        """Point ``champion`` back at the version the latest promotion replaced (by hand,
        or when live accuracy falls). Raises: ModelNotFound, NothingToRollBack."""
        return await self._promotions.rollback(tenant_id, model_name, reason)

    async def start_forecast(self, forecast: NewForecast) -> ForecastRecord:
        """Check and persist a batch forecast as ``queued``, then run it.

        Raises:
            ModelNotFound, InvalidRequest (on ``feature_set``, ``horizon`` or ``series``).
        """
        return await self._forecasts.submit(forecast)

    async def create_schedule(self, schedule: NewSchedule) -> ScheduleRecord:
        """Raises: InvalidRequest (its job could never run), AlreadyExists."""
        await self._intake.check_scheduled(schedule.job)
        return await self._schedules.create(schedule, self._clock())

    async def update_schedule(self, schedule_id: str, changes: dict[str, Any]) -> ScheduleRecord:
        """Raises: ScheduleNotFound, InvalidRequest, AlreadyExists."""
        if "job" in changes:
            await self._intake.check_scheduled(changes["job"])
        return await self._schedules.update(schedule_id, changes, self._clock())

    async def delete_schedule(self, schedule_id: str) -> None:
        """Raises: ScheduleNotFound."""
        await self._schedules.delete(schedule_id)

    async def fire_schedules(self, now: datetime | None = None) -> list[str]:
        """Start the jobs of every schedule due at ``now`` (default: the clock); the loop
        calls it every ``schedule_poll_seconds``, tests call it with their own time."""
        return await self._scheduler.fire_due(now or self._clock())

    async def monitor(self) -> int:
        """Score the stored forecasts whose actuals arrived (the loop calls it, then
        ``check_policies``, every ``monitor_seconds``); how many were scored."""
        return await self._aftercare.monitor.step()

    async def check_policies(self, now: datetime | None = None) -> list[str]:
        """Roll back the champions the policies' rollback rules find worse, then start the
        retrains the policies call for at ``now`` (default: the clock); the jobs' ids."""
        return await self._aftercare.check_policies(now or self._clock())

    async def create_policy(self, policy: NewPolicy) -> PolicyRecord:
        """Raises: InvalidRequest (its job could never run), AlreadyExists."""
        return await self._aftercare.create_policy(policy)

    async def update_policy(self, policy_id: str, changes: dict[str, Any]) -> PolicyRecord:
        """Raises: PolicyNotFound, InvalidRequest."""
        return await self._aftercare.update_policy(policy_id, changes)

    async def delete_policy(self, policy_id: str) -> None:
        """Raises: PolicyNotFound."""
        await self._aftercare.delete_policy(policy_id)

    async def champion(self, tenant_id: str, model_name: str) -> ChampionRef | None:
        """Asked by a compare stage for the champion to score (None: there is none)."""
        try:
            model = await self._registry.resolve(tenant_id, model_name, CHAMPION)
        except AliasNotFound:
            return None
        return ChampionRef(model.model_id, model.artifact_uri)

    async def log_predictions(
        self, model_id: str, predictions: list[dict[str, Any]]
    ) -> ForecastRecord | None:
        """Keep a request's forecasts for monitoring (``ForecastRunner.log_predictions``)."""
        return await self._forecasts.log_predictions(model_id, predictions)

    async def record_forecast_progress(self, forecast_id: str, progress: float) -> None:
        """Called (fire and forget) by a forecast's coordinator as its parts finish."""
        await self._forecasts.record_progress(forecast_id, progress)
