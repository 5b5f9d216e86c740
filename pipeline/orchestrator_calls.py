"""What a running stage asks of the orchestrator actor (``reporter`` in ``pipeline.graph``):
whether its job was cancelled, a training's live scores, and the version to register.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ray
from ray.exceptions import RayError

from pipeline.register import JobContext
from pipeline.storage import Location


class CancelCheck:
    """Asks the orchestrator whether a job was cancelled (from inside a stage task)."""

    def __init__(self, orchestrator: Any, job_id: str) -> None:
        self._orchestrator = orchestrator
        self._job_id = job_id

    def __call__(self) -> bool:
        try:
            answer = ray.get(self._orchestrator.is_cancelled.remote(self._job_id), timeout=10)
        except (RayError, TimeoutError):
            return False  # cannot tell: keep training rather than stop a live job
        return bool(answer)


class LiveReport:
    """Sends a running training's best validation scores to the orchestrator (fire and
    forget: a lost report is replaced by the next one)."""

    def __init__(self, orchestrator: Any, job_id: str) -> None:
        self._orchestrator = orchestrator
        self._job_id = job_id

    def __call__(self, metrics: dict[str, float]) -> None:
        self._orchestrator.record_live_metrics.remote(self._job_id, metrics)


class OrchestratorVersion:
    """Asks the orchestrator for the job's model version (from inside the register task).

    No timeout: the orchestrator answers once the database does (or gives up after its
    outage limit), and if it dies the call fails and recovery re-queues the job.
    """

    def __init__(self, orchestrator: Any, context: JobContext) -> None:
        self._orchestrator = orchestrator
        self._context = context

    def __call__(self, parent: Location, now: datetime) -> str:
        context = self._context
        claim = self._orchestrator.claim_version.remote(
            context.job_id, context.tenant_id, context.model_name, now
        )
        version: str = ray.get(claim)
        return version
