"""A model's life after registration, on the orchestrator: its served forecasts scored
against their actuals (``Monitor``), the rollbacks its policy's rule calls for
(``Rollbacks``), and the retrains its policy calls for (``RetrainPolicies``), one after
the other so that a policy acts on fresh scores."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from actors.metrics import ServiceMetrics
from actors.monitoring import Monitor
from actors.policies import RetrainPolicies, Submit, WriteLogs
from actors.rollbacks import Rollbacks
from db.database import Database
from db.monitoring import MonitorStore
from db.policies import NewPolicy, PolicyRecord, PolicyStore
from db.promotions import PromotionStore
from db.registry import ModelRegistry
from pipeline.graph.monitor import launch_monitor
from pipeline.settings import PipelineSettings

#: Checks a policy's job as a submit would (``Intake.check_scheduled``).
CheckJob = Callable[[Mapping[str, Any]], Awaitable[None]]


class Aftercare:
    def __init__(
        self,
        database: Database,
        registry: ModelRegistry,
        pipeline: PipelineSettings,
        metrics: ServiceMetrics,
        *,
        submit: Submit,
        check_job: CheckJob,
        write_logs: WriteLogs,
        clock: Callable[[], datetime],
        forecasts_kept: timedelta,
    ) -> None:
        monitoring = MonitorStore(database)
        self._policies = PolicyStore(database)
        self._check_job = check_job
        self._clock = clock
        self.rollbacks = Rollbacks(
            self._policies,
            monitoring,
            PromotionStore(database),
            registry,
            write_logs=write_logs,
        )
        self.monitor = Monitor(
            monitoring,
            registry,
            pipeline,
            launch=lambda task: launch_monitor(task, pipeline),
            report=metrics.model_health,
            clock=clock,
            max_age=forecasts_kept,
            shadow_for=self.rollbacks.shadow_for,
        )
        self.retrains = RetrainPolicies(
            self._policies,
            monitoring,
            registry,
            pipeline,
            submit=submit,
            write_logs=write_logs,
        )

    async def step(self) -> None:
        """Score what has actuals, then act on the policies."""
        await self.monitor.step()
        await self.check_policies(self._clock())

    async def check_policies(self, now: datetime) -> list[str]:
        """Roll back the champions the policies' rules find worse than the ones they
        replaced, then start the retrains the policies call for; their job ids."""
        await self.rollbacks.check(now)
        return await self.retrains.check(now)

    async def create_policy(self, policy: NewPolicy) -> PolicyRecord:
        """Raises: InvalidRequest (its job could never run), AlreadyExists."""
        await self._check_job(policy.job)
        return await self._policies.create(policy, self._clock())

    async def update_policy(self, policy_id: str, changes: dict[str, Any]) -> PolicyRecord:
        """Raises: PolicyNotFound, InvalidRequest."""
        if "job" in changes:
            await self._check_job(changes["job"])
        return await self._policies.update(policy_id, changes, self._clock())

    async def delete_policy(self, policy_id: str) -> None:
        """Raises: PolicyNotFound."""
        await self._policies.delete(policy_id)
