"""Recovery, the stuck-job watchdog and retention: what keeps the database and the queue
(and the batch forecasts) true to each other and small."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from actors.forecasts import ForecastRunner
from actors.queue import JobQueue
from actors.recorder import service_log
from actors.settings import OrchestratorSettings
from db.jobs import JobStore
from db.records import JobRecord, PurgeReport
from db.retention import feature_versions_in_use, purge
from domain.errors import IllegalTransition
from domain.events import JobEvent
from domain.jobs import JobStatus, LogLevel
from pipeline.config import TrainingConfig
from pipeline.resources import demand_of
from pipeline.store.feature_store import FeatureStore

logger = logging.getLogger(__name__)


class Housekeeping:
    """Re-queues (or fails) jobs whose run was lost, reloads the queue, applies retention
    (to the database and to the feature store)."""

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        settings: OrchestratorSettings,
        features: FeatureStore,
        *,
        clock: Callable[[], datetime],
        tracked: Callable[[str], bool],
        forecasts: ForecastRunner,
        studies_root: Path,
    ) -> None:
        self._store = store
        self._queue = queue
        self._settings = settings
        self._features = features
        self._clock = clock
        self._tracked = tracked
        self._forecasts = forecasts
        self._studies_root = studies_root

    async def recover(self) -> None:
        """Re-queue (or fail) jobs a previous incarnation was running; load the queue; run
        again (or fail) the batch forecasts it was running and start the queued ones."""
        for job in await self._store.jobs_in_status(JobStatus.RUNNING):
            await self._interrupted(job, "the orchestrator or a worker was lost")
        await self.load_queue()
        await self._forecasts.recover()

    async def load_queue(self) -> None:
        """Queue every job the database says is queued (pushing a queued one is a no-op),
        but one this orchestrator is already starting: after a long database outage the
        row of a job being placed still says queued, and queued twice it would be started
        twice."""
        for job in await self._store.jobs_in_status(JobStatus.QUEUED):
            if not self._tracked(job.job_id):
                self._requeue(job)

    async def reclaim_stuck(self) -> int:
        """The stuck-job watchdog: a job the database says is running, that this
        orchestrator does not track and that has not moved for ``stuck_job_seconds`` (e.g.
        a second orchestrator died with it), is re-queued or failed like an interrupted
        one; batch forecasts are recovered as at a start. Returns how many jobs were
        re-queued."""
        await self._forecasts.recover()
        stale = self._clock() - timedelta(seconds=self._settings.stuck_job_seconds)
        requeued = 0
        for job in await self._store.jobs_in_status(JobStatus.RUNNING):
            if self._tracked(job.job_id) or job.updated_at >= stale:
                continue
            logger.warning("job %s is running but untracked; reclaiming it", job.job_id)
            if await self._interrupted(job, "its tasks were gone (stuck-job watchdog)"):
                self._requeue(job)
                requeued += 1
        return requeued

    def _requeue(self, job: JobRecord) -> None:
        demand = demand_of(TrainingConfig.model_validate(job.config))
        self._queue.push(job.job_id, job.tenant_id, job.priority, job.created_at, demand)

    async def purge(self) -> PurgeReport:
        """Apply the retention policy now: to the database, then to the files of the
        jobs and forecasts it purged and to the feature store's versions that nothing
        references any more."""
        now, policy = self._clock(), self._settings.retention
        report = await purge(self._store.database, policy, now)
        await asyncio.to_thread(self._forecasts.remove_outputs, report.forecasts)
        await asyncio.to_thread(self._remove_journals, report.job_ids)
        in_use = await feature_versions_in_use(self._store.database)
        in_use |= self._forecasts.versions_in_use()
        grace = timedelta(hours=policy.feature_versions_grace_hours)
        removed = await asyncio.to_thread(self._features.remove_unreferenced, in_use, now, grace)
        logger.info(
            "retention purged %d jobs, %d log lines, %d batch forecasts and %d feature-set "
            "versions",
            report.jobs,
            report.logs,
            len(report.forecasts),
            len(removed),
        )
        return replace(report, feature_versions=tuple(removed))

    def _remove_journals(self, job_ids: Sequence[str]) -> None:
        """Delete the Optuna journals of purged HPO jobs (``pipeline.graph.search``)."""
        for job_id in job_ids:
            (self._studies_root / f"{job_id}.journal").unlink(missing_ok=True)

    async def _interrupted(self, job: JobRecord, cause: str) -> bool:
        """Re-queue a running job whose run was lost, or fail it past ``max_attempts``;
        returns whether it was re-queued."""
        limit = self._settings.max_attempts
        if job.attempts >= limit:
            message = (
                f"interrupted {job.attempts} times ({cause}); giving up after {limit} attempts"
            )
            event, level = JobEvent.FAIL, LogLevel.ERROR
        else:
            message = (
                f"re-queued after an interruption: attempt {job.attempts} of {limit} "
                f"was lost ({cause})"
            )
            event, level = JobEvent.REQUEUE, LogLevel.WARNING
        try:
            await self._store.transition(
                job.job_id,
                event,
                error_message=message if event is JobEvent.FAIL else None,
                logs=[service_log(job.job_id, message, self._clock(), level)],
            )
        except IllegalTransition:
            return False
        return event is JobEvent.REQUEUE
