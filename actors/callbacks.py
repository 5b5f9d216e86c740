"""What a job's stages and a forecast's coordinator ask the orchestrator, over its actor
handle (``pipeline.job_callbacks.JobCallbacks``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayError

from actors.remote import remote
from pipeline.context import JobContext
from pipeline.placement import Bundle
from pipeline.promotion import ChampionRef
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.storage import Location


class CallbackTarget(Protocol):
    """The orchestrator's methods that running work calls back (``JobOrchestrator``)."""

    async def is_cancelled(self, job_id: str) -> bool: ...

    async def record_live_metrics(self, job_id: str, scores: dict[str, float]) -> None: ...

    async def record_trial(
        self, job_id: str, trial: TrialReport, progress: SearchProgress
    ) -> None: ...

    async def claim_version(
        self, job_id: str, tenant_id: str, model_name: str, now: datetime
    ) -> str: ...

    async def record_forecast_progress(self, forecast_id: str, progress: float) -> None: ...

    async def champion(self, tenant_id: str, model_name: str) -> ChampionRef | None: ...

    async def trial_slots(self, job_id: str) -> list[Bundle]: ...


@dataclass(frozen=True)
class OrchestratorCallbacks:
    """``JobCallbacks`` for one job's stages, over the orchestrator's handle."""

    orchestrator: ActorHandle[CallbackTarget]
    context: JobContext

    def is_cancelled(self) -> bool:
        job_id = self.context.job_id
        try:
            return ray.get(
                remote(self.orchestrator, CallbackTarget.is_cancelled, job_id), timeout=10
            )
        except (RayError, TimeoutError):
            return False  # cannot tell: keep training rather than stop a live job

    def record_live_metrics(self, scores: dict[str, float]) -> None:
        """Fire and forget: a lost report is replaced by the next one."""
        remote(self.orchestrator, CallbackTarget.record_live_metrics, self.context.job_id, scores)

    def record_trial(self, trial: TrialReport, progress: SearchProgress) -> None:
        remote(self.orchestrator, CallbackTarget.record_trial, self.context.job_id, trial, progress)

    def claim_version(self, parent: Location, now: datetime) -> str:
        """No timeout: the orchestrator answers once the database does (or gives up after
        its outage limit), and if it dies the call fails and recovery re-queues the job."""
        c = self.context
        claim = remote(
            self.orchestrator,
            CallbackTarget.claim_version,
            c.job_id,
            c.tenant_id,
            c.model_name,
            now,
        )
        return ray.get(claim)

    def champion(self) -> ChampionRef | None:
        """Asked by a compare stage; no timeout, as ``claim_version``."""
        c = self.context
        return ray.get(
            remote(self.orchestrator, CallbackTarget.champion, c.tenant_id, c.model_name)
        )

    def trial_slots(self) -> list[Bundle] | None:
        """Asked by a search every few seconds; None without an answer (the search keeps
        the slots it knew)."""
        try:
            return ray.get(
                remote(self.orchestrator, CallbackTarget.trial_slots, self.context.job_id),
                timeout=10,
            )
        except (RayError, TimeoutError):
            return None


@dataclass(frozen=True)
class ForecastProgress:
    """The progress callback of one forecast's coordinator (fire and forget: a lost report
    is replaced by the next one)."""

    orchestrator: ActorHandle[CallbackTarget]
    forecast_id: str

    def __call__(self, progress: float) -> None:
        remote(
            self.orchestrator, CallbackTarget.record_forecast_progress, self.forecast_id, progress
        )
