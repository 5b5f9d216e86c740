"""The orchestrator: a detached actor that owns the job queue and every job state change.

It only wires and delegates: new jobs come in through ``Intake``, queued jobs run through
``Lifecycle``, ``Housekeeping`` recovers, reclaims and purges, and storage (``db``) and the
pipeline graph (``pipeline.graph``) do the work. The database is the truth; the in-memory
queue is a cache rebuilt at every start, so the actor can be killed and restarted at any
moment without losing a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import ray
from ray.exceptions import RayError

from actors.admission import Admission
from actors.aftercare import Aftercare
from actors.autoscaler import AutoscalerRequests, send_to_autoscaler
from actors.callbacks import ForecastProgress, OrchestratorCallbacks
from actors.cluster import ClusterShape, read_cluster
from actors.commands import ModelCommands
from actors.dispatch import Rules
from actors.forecasts import ForecastRunner
from actors.housekeeping import Housekeeping
from actors.intake import Intake
from actors.ledger import Ledger
from actors.lifecycle import Lifecycle
from actors.loops import every
from actors.metrics import ServiceMetrics
from actors.queue import JobQueue
from actors.reservations import RayPlacementGroups, Reservations
from actors.scheduler import ScheduledFire, Scheduler
from actors.settings import NAMESPACE, OrchestratorSettings
from actors.stats import Stats
from actors.submission import JobSubmission
from actors.validation import JobValidator
from actors.versions import VersionClaims
from actors.waiting import QueueStatus
from db.database import Database
from db.experiments import ExperimentCatalog
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.promotions import PromotionStore
from db.records import (
    JobFilters,
    JobRecord,
    LogRecord,
    Page,
    PurgeReport,
)
from db.registry import ModelRegistry
from db.schedules import ScheduleStore
from domain.clock import utcnow
from domain.errors import ServiceUnavailable, TrainingError
from domain.jobs import JobStatus
from pipeline.graph.forecast import launch_forecast
from pipeline.graph.launch import launch
from pipeline.placement import Bundle
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.settings import PipelineSettings
from pipeline.store.feature_store import FeatureStore

logger = logging.getLogger(__name__)

#: How often the dispatch loop looks at the queue when nothing wakes it.
IDLE_POLL_SECONDS = 1.0
#: How often the orchestrator re-reads the cluster's size and updates its autoscaler request.
CLUSTER_POLL_SECONDS = 2.0


class JobOrchestrator(ModelCommands):
    """Queue, admission by resources, state transitions and recovery for training jobs
    (and, through ``ModelCommands``, what the jobs leave behind)."""

    async def __init__(  # type: ignore[misc]  # Ray awaits an async actor's constructor
        self,
        database_url: str,
        pipeline: PipelineSettings,
        settings: OrchestratorSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        database = Database.from_url(database_url)
        self._store = JobStore(database)
        self._registry = ModelRegistry(database)
        self._promotions = PromotionStore(database)
        self._schedules = ScheduleStore(database)
        self._settings = settings
        self._clock = clock
        shape = await asyncio.to_thread(self._read_cluster)
        features = FeatureStore(pipeline.features_root)
        self._ledger = Ledger(shape)
        self._reservations = Reservations(
            self._ledger, RayPlacementGroups(), prefix=f"{settings.actor_name}:"
        )
        self._autoscaler = AutoscalerRequests(send_to_autoscaler)
        queue = JobQueue()
        admission = Admission(settings.tenant_defaults(), settings.tenant_limits)
        self._metrics = ServiceMetrics()
        self._queue = queue
        self._wakeup = asyncio.Event()
        self._intake = Intake(
            self._store,
            JobValidator(features, lambda: self._ledger.shape, pipeline.distributed_min_rows),
            admission,
            queue,
            idempotency_window=timedelta(hours=settings.retention.idempotency_keys_hours),
            clock=clock,
            on_queued=self._wakeup.set,
        )
        self._lifecycle = Lifecycle(
            self._store,
            ExperimentCatalog(database),
            pipeline,
            queue,
            admission,
            self._metrics,
            reservations=self._reservations,
            rules=Rules(settings.max_concurrent_jobs, settings.max_preemptions),
            placement_timeout=settings.placement_timeout_seconds,
            outage_seconds=settings.database_outage_seconds,
            versions=VersionClaims(self._registry),
            launch=lambda context, callbacks, placement: launch(
                context, pipeline, callbacks, placement
            ),
            callbacks_for=functools.partial(
                OrchestratorCallbacks, ray.get_runtime_context().current_actor
            ),
            node_id=ray.get_runtime_context().get_node_id(),
            wake=self._wakeup.set,
            clock=clock,
        )
        handle = ray.get_runtime_context().current_actor
        self._forecasts = ForecastRunner(
            ForecastStore(database),
            self._registry,
            pipeline,
            max_attempts=settings.max_attempts,
            outage_seconds=settings.database_outage_seconds,
            clock=clock,
            launch=lambda task, progress, placement: launch_forecast(
                task, pipeline, progress, placement
            ),
            progress_for=functools.partial(ForecastProgress, handle),
            reserve=self._lifecycle.reserve,
            release=self._lifecycle.release,
            cpus=settings.forecast_cpus,
        )
        self._housekeeping = Housekeeping(
            self._store,
            queue,
            settings,
            features,
            clock=clock,
            tracked=self._lifecycle.tracks,
            forecasts=self._forecasts,
            studies_root=pipeline.studies_root,
        )
        self._scheduler = Scheduler(self._schedules, self._intake.submit)
        self._aftercare = Aftercare(
            database,
            self._registry,
            pipeline,
            self._metrics,
            submit=self._intake.submit,
            check_job=self._intake.check_scheduled,
            write_logs=self._store.append_logs,
            clock=clock,
            forecasts_kept=timedelta(days=settings.retention.forecasts_days),
        )
        self._recovered = asyncio.Event()
        #: Set when a database outage may have dropped a job popped from the queue.
        self._reload_queue = False
        retention_seconds = settings.retention.interval_hours * 3600
        self._loops = [
            every(IDLE_POLL_SECONDS, self._dispatch, "dispatch", wake=self._wakeup),
            every(
                CLUSTER_POLL_SECONDS,
                self._follow_cluster,
                "following the cluster",
                after=self._recovered,
            ),
            every(retention_seconds, self.cleanup, "retention"),
            every(
                settings.schedule_poll_seconds,
                self.fire_schedules,
                "firing schedules",
                after=self._recovered,
            ),
            every(
                settings.monitor_seconds, self._aftercare.step, "aftercare", after=self._recovered
            ),
            every(
                settings.stuck_job_seconds,
                self._reclaim_stuck,
                "stuck-job watchdog",
                after=self._recovered,
                delay_first=True,
            ),
        ]

    # ------------------------------------------------------------------ commands

    async def submit(self, submission: JobSubmission) -> JobRecord:
        """Validate and persist a job as ``queued``; it is in the database when this returns.

        Raises:
            InvalidRequest: the job could never run (unknown feature set, target, CPUs).
            TooManyRequests: the tenant's queue is full.
        """
        job, _created = await self._intake.submit(submission)
        return job

    async def submit_once(
        self,
        submission: JobSubmission,
        idempotency_key: str | None,
        schedule: ScheduledFire | None = None,
    ) -> tuple[JobRecord, bool]:
        """``submit``, at most once per ``idempotency_key``; see ``Intake.submit``."""
        return await self._intake.submit(submission, idempotency_key, schedule)

    async def retry(self, job_id: str) -> JobRecord:
        """Queue a new job with a failed or cancelled job's config, tagged ``retry_of``."""
        return await self._intake.retry(job_id)

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job at once, or a running one and its Ray tasks.

        Raises:
            JobNotFound, IllegalTransition (the job has finished).
        """
        return await self._lifecycle.cancel(job_id)

    async def cancel_queued(self, tenant_id: str) -> list[str]:
        """Cancel every queued job of a tenant at once (one transaction); their ids."""
        return await self._lifecycle.cancel_queued(tenant_id)

    async def cleanup(self) -> PurgeReport:
        """Apply the retention policy now."""
        return await self._housekeeping.purge()

    # ------------------------------------------------------------------ queries

    async def get_job(self, job_id: str) -> JobRecord:
        return await self._store.get_job(job_id)

    async def list_jobs(self, filters: JobFilters, page: int, page_size: int) -> Page[JobRecord]:
        return await self._store.list_jobs(filters, page, page_size)

    async def logs(self, job_id: str, tail: int) -> list[LogRecord]:
        return await self._store.tail_logs(job_id, tail)

    async def stats(self, tenant_id: str | None = None) -> Stats:
        """Running and queued jobs (of one tenant, if given) and the shared CPUs."""
        counts = await self._store.count_by_status(tenant_id)
        shape = self._ledger.shape
        return Stats(
            counts[JobStatus.RUNNING],
            counts[JobStatus.QUEUED],
            cluster_cpus=shape.cpus,
            max_cpus=shape.max_cpus,
            cpus_reserved=self._ledger.reserved,
            max_concurrent_jobs=self._settings.max_concurrent_jobs,
        )

    async def queue_statuses(
        self, job_ids: list[str], tenant_only: bool = False
    ) -> dict[str, QueueStatus]:
        """Where each of the jobs that are queued stands and why it waits (one call for a
        page of jobs); ``tenant_only``: places among its tenant's jobs (a tenant's key)."""
        return self._lifecycle.queue_statuses(job_ids, tenant_only)

    async def held_cpus(self, job_id: str) -> int | None:
        """The CPUs a job this orchestrator runs holds now (its trial slots taken back
        make it fewer than its demand); None if it runs no such job."""
        return self._lifecycle.held_cpus(job_id)

    async def metrics_text(self) -> str:
        """Prometheus text exposition of the service's metrics."""
        self._metrics.set_queue(self._queue.entries(), self._lifecycle.running)
        text = self._metrics.text()
        if self._settings.mlflow.enabled:  # the mirror's own gauges, if it is up
            with contextlib.suppress(ValueError, RayError, TimeoutError):
                mirror = ray.get_actor(self._settings.mirror_name, namespace=NAMESPACE)
                text += await asyncio.wait_for(mirror.metrics_text.remote(), 5)
        return text

    async def ready(self) -> bool:
        """Wait until recovery has finished; then the dispatch loop is running."""
        await self._recovered.wait()
        return not self._loops[0].done()

    # ------------------------------------------------------------------ calls from stages

    async def record_trial(self, job_id: str, trial: TrialReport, progress: SearchProgress) -> None:
        """Called by a running search (fire and forget) as each trial finishes."""
        await self._lifecycle.record_trial(job_id, trial, progress)

    async def record_live_metrics(self, job_id: str, scores: dict[str, float]) -> None:
        """Called by a running training (fire and forget) with its best validation scores
        so far; they show in the job's metrics until the stage reports."""
        await self._lifecycle.record_live_metrics(job_id, scores)

    async def is_cancelled(self, job_id: str) -> bool:
        """Asked by a running training (about once a second), search or backtest (every two
        seconds), so it stops even if Ray's cancel missed its task; answered from memory for
        the jobs this orchestrator runs."""
        known = self._lifecycle.cancelled(job_id)
        if known is not None:
            return known
        try:
            return (await self._store.get_job(job_id)).status is JobStatus.CANCELLED
        except TrainingError:
            return False

    async def claim_version(
        self, job_id: str, tenant_id: str, model_name: str, now: datetime
    ) -> str:
        """Asked by a register stage for the version to save its model as."""
        return await self._lifecycle.claim_version(job_id, tenant_id, model_name, now)

    async def trial_slots(self, job_id: str) -> list[Bundle]:
        """Asked by a search (whenever trials could start) for the trial slots its job
        holds now besides its bundles."""
        return self._lifecycle.trial_slots(job_id)

    async def count_database_error(self) -> None:
        """Called (fire and forget) by API replicas when the database fails them."""
        self._metrics.database_error()

    # ------------------------------------------------------------------ loops

    async def _dispatch(self) -> None:
        """Recover (once), then start the queued jobs that fit."""
        try:
            if not self._recovered.is_set():
                await asyncio.to_thread(self._reservations.clear_stale)
                await self._housekeeping.recover()
                self._recovered.set()
            if self._reload_queue or self._lifecycle.take_lost():
                await self._housekeeping.load_queue()
                self._reload_queue = False
            await self._lifecycle.start_queued()
        except Exception as exc:  # jobs taken from the queue may not have started
            if isinstance(exc, ServiceUnavailable):
                self._metrics.database_error()
            self._reload_queue = True
            raise

    async def _follow_cluster(self) -> None:
        """Re-read the cluster's nodes (they join and leave; a change wakes the dispatch
        loop), remove the groups Ray failed to remove, then ask its autoscaler for the
        bundles the queued jobs wait for."""
        shape = await asyncio.to_thread(self._read_cluster)
        if self._reservations.unremoved:
            await asyncio.to_thread(self._reservations.retry_removals)
        changed = self._ledger.update(shape)
        if changed or self._reservations.displaced():
            await asyncio.to_thread(self._reservations.relocate)
        if changed:
            self._wakeup.set()
        running, queued = self._lifecycle.demand()
        await asyncio.to_thread(
            self._autoscaler.update,
            running,
            queued,
            shape.max_cpus,
            self._settings.max_concurrent_jobs,
        )

    def _read_cluster(self) -> ClusterShape:
        return read_cluster(self._settings.max_cluster_cpus, self._settings.max_node_cpus)

    async def _reclaim_stuck(self) -> None:
        if await self._housekeeping.reclaim_stuck():
            self._wakeup.set()
