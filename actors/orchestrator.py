"""The orchestrator: a detached actor that owns the job queue and every job state change.

It is thin: the state machine (``actors.state``), the queue (``actors.queue``), storage
(``db.store``) and the pipeline graph (``pipeline.graph``) do the work. The database is
the truth; the in-memory queue is a cache rebuilt at every start, so the actor can be
killed and restarted at any moment without losing a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

import ray
from ray.actor import ActorHandle
from ray.exceptions import (
    NodeDiedError,
    RayError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)

from actors.admission import Admission
from actors.durable import durably
from actors.metrics import ServiceMetrics
from actors.queue import JobQueue
from actors.recorder import SearchRecorder, StageRecorder, service_log, to_new_log
from actors.scheduler import ScheduledFire, Scheduler
from actors.settings import NAMESPACE, OrchestratorSettings
from actors.state import JobEvent, can_retry
from actors.submission import JobSubmission
from actors.versions import VersionClaims
from db.models import utcnow
from db.records import (
    IdempotencyClaim,
    JobFilters,
    JobRecord,
    LogRecord,
    ModelRecord,
    NewJob,
    NewModel,
    Page,
    PurgeReport,
)
from db.registry import ModelRegistry
from db.retention import purge
from db.schedules import NewSchedule, ScheduleRecord, ScheduleStore
from db.store import SqlAlchemyStore
from domain.errors import (
    Conflict,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidRequest,
    ServiceUnavailable,
    TrainingError,
)
from domain.jobs import JobStatus, LogLevel
from pipeline.backtest import check_fits as check_backtest_fits
from pipeline.config import TrainingConfig
from pipeline.feature_store import FeatureStore
from pipeline.graph import PipelineRun, launch
from pipeline.register import JobContext, SavedModel
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.settings import PipelineSettings
from pipeline.stages import StageFailed
from pipeline.storage import Location

logger = logging.getLogger(__name__)

#: How often the dispatch loop looks at the queue when nothing wakes it.
IDLE_POLL_SECONDS = 1.0
#: How long a cancelled job's running task may take to stop before its worker is killed.
CANCEL_GRACE_SECONDS = 5.0
#: A resource only Ray's head node has.
HEAD_NODE_RESOURCE = "node:__internal_head__"

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class _RunningJob:
    tenant_id: str
    run: PipelineRun
    recorder: StageRecorder
    follower: asyncio.Task[None]  # held here: the event loop keeps only weak references
    cancelled: bool = False
    watchdog: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class QueueStatus:
    position: int
    waiting_reason: str


@dataclass(frozen=True)
class Stats:
    active_jobs: int
    queued_jobs: int
    total_capacity: int

    @property
    def utilization_percent(self) -> float:
        return round(100 * self.active_jobs / self.total_capacity, 1)


class JobOrchestrator:
    """Queue, capacity, state transitions and recovery for training jobs."""

    async def __init__(  # type: ignore[misc]  # Ray awaits an async actor's constructor
        self,
        database_url: str,
        pipeline: PipelineSettings,
        settings: OrchestratorSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = SqlAlchemyStore.from_url(database_url)
        self._registry = ModelRegistry(self._store.database)
        self._schedules = ScheduleStore(self._store.database)
        self._scheduler = Scheduler(self._schedules, self._submit_scheduled)
        self._clock = clock
        self._pipeline = pipeline
        self._features = FeatureStore(pipeline.features_root)
        self._settings = settings
        self._cluster_cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        self._capacity = settings.max_concurrent_jobs or self._cluster_cpus
        self._queue = JobQueue()
        self._admission = Admission(
            settings.tenant_defaults(), settings.tenant_limits, self._capacity
        )
        self._submitting = asyncio.Lock()
        self._metrics = ServiceMetrics()
        self._running: dict[str, _RunningJob] = {}
        self._cancel_before_launch: set[str] = set()
        self._searches: dict[str, SearchRecorder] = {}
        self._versions = VersionClaims(self._store)
        self._self = ray.get_runtime_context().current_actor
        self._wakeup = asyncio.Event()
        self._recovered = asyncio.Event()
        #: Set when a database outage may have dropped a job popped from the queue.
        self._reload_queue = False
        self._loop = asyncio.get_running_loop().create_task(self._dispatch_forever())
        self._retention = asyncio.get_running_loop().create_task(self._purge_forever())
        self._firing = asyncio.get_running_loop().create_task(self._fire_forever())
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_forever())

    # ------------------------------------------------------------------ commands

    async def submit(self, submission: JobSubmission) -> JobRecord:
        """Validate and persist a job as ``queued``; it is in the database when this returns.

        Raises:
            InvalidRequest: the job could never run (unknown feature set, target, CPUs).
            TooManyRequests: the tenant's queue is full.
        """
        job, _created = await self.submit_once(submission, None)
        return job

    async def submit_once(
        self,
        submission: JobSubmission,
        idempotency_key: str | None,
        schedule: ScheduledFire | None = None,
    ) -> tuple[JobRecord, bool]:
        """``submit``, at most once per ``idempotency_key`` (kept 24 hours): a repeated key
        with the same submission returns the job it created, and ``False``.

        Raises:
            IdempotencyKeyReused: the key came with a different submission.
            InvalidRequest, TooManyRequests: as ``submit``.
        """
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyClaim(idempotency_key, submission.digest())
        async with self._submitting:
            if claim is not None:
                kept = timedelta(hours=self._settings.retention.idempotency_keys_hours)
                earlier = await self._store.find_idempotent(
                    submission.tenant_id, claim.key, self._clock() - kept
                )
                if earlier is not None:
                    if earlier.request_hash != claim.request_hash:
                        raise IdempotencyKeyReused(
                            f"Idempotency-Key {claim.key!r} was used for a different request"
                        )
                    return await self._store.get_job(earlier.job_id), False
            new_job = NewJob(
                tenant_id=submission.tenant_id,
                model_type=submission.model_type,
                model_name=submission.model_name,
                feature_set=submission.config.feature_set,
                priority=submission.priority_value,
                config=submission.config.model_dump(mode="json"),
                schedule_id=schedule.schedule_id if schedule else None,
                fire_time=schedule.fire_time if schedule else None,
            )
            return await self._admit(submission.tenant_id, submission.config, new_job, claim), True

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job at once, or a running one and its Ray tasks.

        Raises:
            JobNotFound, IllegalTransition (the job has finished).
        """
        if job_id not in self._queue and job_id not in self._running:
            self._cancel_before_launch.add(job_id)  # it may be between dequeue and launch
        try:
            job = await self._store.transition(
                job_id, JobEvent.CANCEL, logs=[service_log(job_id, "cancelled on request")]
            )
        except TrainingError:
            self._cancel_before_launch.discard(job_id)
            raise
        if self._queue.remove(job_id):
            self._metrics.job_finished(JobStatus.CANCELLED)
        running = self._running.get(job_id)
        if running is not None:
            running.cancelled = True
            running.run.cancel()
            running.watchdog = asyncio.get_running_loop().create_task(
                self._force_cancel(job_id, running)
            )
        return job

    async def cancel_queued(self, tenant_id: str) -> list[str]:
        """Cancel every queued job of a tenant at once (one transaction); their ids."""
        message = "cancelled on request, with the tenant's other queued jobs"
        jobs = await self._store.cancel_queued(tenant_id, lambda j: service_log(j, message))
        for job in jobs:
            if self._queue.remove(job.job_id):
                self._metrics.job_finished(JobStatus.CANCELLED)
        return [job.job_id for job in jobs]

    async def _force_cancel(self, job_id: str, running: _RunningJob) -> None:
        """Kill the worker of a cancelled job whose task ignored the request (a cancel can
        be lost when it races with the task's start), so its slot and CPU come back."""
        await asyncio.sleep(CANCEL_GRACE_SECONDS)
        if self._running.get(job_id) is running:
            logger.warning(
                "job %s did not stop within %ss; killing its task", job_id, CANCEL_GRACE_SECONDS
            )
            running.run.cancel(force=True)

    async def retry(self, job_id: str) -> JobRecord:
        """Queue a new job with a failed or cancelled job's config, tagged ``retry_of``."""
        job = await self._store.get_job(job_id)
        if not can_retry(job.status):
            raise Conflict(
                f"only failed or cancelled jobs can be retried; this one is {job.status}"
            )
        new_job = NewJob(
            tenant_id=job.tenant_id,
            model_type=job.model_type,
            model_name=job.model_name,
            feature_set=job.feature_set,
            priority=job.priority,
            config=job.config,
            retry_of=job.job_id,
        )
        config = TrainingConfig.model_validate(job.config)
        async with self._submitting:
            return await self._admit(job.tenant_id, config, new_job)

    # ------------------------------------------------------------------ queries

    async def get_job(self, job_id: str) -> JobRecord:
        return await self._store.get_job(job_id)

    async def list_jobs(self, filters: JobFilters, page: int, page_size: int) -> Page[JobRecord]:
        return await self._store.list_jobs(filters, page, page_size)

    async def logs(self, job_id: str, tail: int) -> list[LogRecord]:
        return await self._store.tail_logs(job_id, tail)

    async def stats(self, tenant_id: str | None = None) -> Stats:
        """Running and queued jobs (of one tenant, if given) and the shared capacity."""
        counts = await self._store.count_by_status(tenant_id)
        return Stats(counts[JobStatus.RUNNING], counts[JobStatus.QUEUED], self._capacity)

    async def set_alias(
        self, tenant_id: str, model_name: str, alias: str, version: str
    ) -> ModelRecord:
        """Point a model alias at a version. Raises: ModelNotFound."""
        return await self._registry.set_alias(tenant_id, model_name, alias, version)

    async def delete_alias(self, tenant_id: str, model_name: str, alias: str) -> None:
        """Raises: AliasNotFound."""
        await self._registry.delete_alias(tenant_id, model_name, alias)

    async def create_schedule(self, schedule: NewSchedule) -> ScheduleRecord:
        """Raises: InvalidRequest (its job could never run), AlreadyExists."""
        self._validate_scheduled(schedule.job)
        return await self._schedules.create(schedule, self._clock())

    async def update_schedule(self, schedule_id: str, changes: dict[str, Any]) -> ScheduleRecord:
        """Raises: ScheduleNotFound, InvalidRequest, AlreadyExists."""
        if "job" in changes:
            self._validate_scheduled(changes["job"])
        return await self._schedules.update(schedule_id, changes, self._clock())

    async def delete_schedule(self, schedule_id: str) -> None:
        """Raises: ScheduleNotFound."""
        await self._schedules.delete(schedule_id)

    async def fire_schedules(self, now: datetime | None = None) -> list[str]:
        """Start the jobs of every schedule due at ``now`` (default: the clock); the loop
        calls it every ``schedule_poll_seconds``, tests call it with their own time."""
        return await self._scheduler.fire_due(now or self._clock())

    async def cleanup(self) -> PurgeReport:
        """Apply the retention policy now."""
        report = await purge(self._store.database, self._settings.retention, self._clock())
        logger.info("retention purged %d jobs and %d log lines", report.jobs, report.logs)
        return report

    async def record_trial(self, job_id: str, trial: TrialReport, progress: SearchProgress) -> None:
        """Called by a running search (fire and forget) as each trial finishes."""
        self._metrics.trial_finished(trial.state)
        recorder = self._searches.get(job_id)
        if recorder is not None:
            await recorder.record(trial, progress)

    async def record_live_metrics(self, job_id: str, scores: dict[str, float]) -> None:
        """Called by a running training (fire and forget) with its best validation scores
        so far; they show in the job's metrics until the stage reports."""
        running = self._running.get(job_id)
        if running is not None and not running.cancelled:
            await running.recorder.record_live(scores)

    async def queue_status(self, job_id: str) -> QueueStatus | None:
        """Where a queued job stands and why it waits; None if it is not queued."""
        if job_id not in self._queue:
            return None
        tenant_id = self._queue.tenant_of(job_id)
        ahead, higher = self._queue.ahead_of(job_id)
        reason = self._admission.waiting_reason(
            tenant_id, self._running_of(tenant_id), ahead, higher, len(self._running)
        )
        return QueueStatus(position=ahead + 1, waiting_reason=reason)

    async def metrics_text(self) -> str:
        """Prometheus text exposition of the service's metrics."""
        self._metrics.set_queue(self._queue.entries(), len(self._running))
        text = self._metrics.text()
        if self._settings.mlflow.enabled:  # the mirror's own gauges, if it is up
            with contextlib.suppress(ValueError, RayError, TimeoutError):
                mirror = ray.get_actor(self._settings.mirror_name, namespace=NAMESPACE)
                text += await asyncio.wait_for(mirror.metrics_text.remote(), 5)
        return text

    async def is_cancelled(self, job_id: str) -> bool:
        """Asked by a running training every few rounds, so it stops even if Ray's cancel
        missed its task."""
        try:
            return (await self._store.get_job(job_id)).status is JobStatus.CANCELLED
        except TrainingError:
            return False

    async def claim_version(
        self, job_id: str, tenant_id: str, model_name: str, now: datetime
    ) -> str:
        """Asked by a register stage for the version to save its model as (waiting out a
        database outage, as the job's own writes do)."""
        return await self._durably(self._versions.claim, job_id, tenant_id, model_name, now)

    def count_database_error(self) -> None:
        """Called (fire and forget) by API replicas when the database fails them."""
        self._metrics.database_error()

    async def ready(self) -> bool:
        """Wait until recovery has finished; then the dispatch loop is running."""
        await self._recovered.wait()
        return not self._loop.done()

    # ------------------------------------------------------------------ internals

    def _validate(self, tenant_id: str, config: TrainingConfig) -> None:
        features = self._features.for_tenant(tenant_id)
        if not features.exists(config.feature_set):
            known = [s.name for s in features.list()]
            raise InvalidRequest(
                "config.feature_set", f"unknown feature set {config.feature_set!r}; known: {known}"
            )
        schema = features.schema(config.feature_set)
        if config.target_variable != schema.target_column:
            raise InvalidRequest(
                "config.target_variable",
                f"feature set {schema.name!r} has target {schema.target_column!r}, "
                f"not {config.target_variable!r}",
            )
        if config.backtest is not None:
            check_backtest_fits(config, schema, features.step_seconds(config.feature_set))
        if not config.enable_hpo and config.train_cpus > self._cluster_cpus:
            raise InvalidRequest(
                "config.n_workers",
                f"n_workers={config.n_workers} exceeds the cluster's {self._cluster_cpus} CPUs; "
                "the job could never run",
            )

    async def _admit(
        self,
        tenant_id: str,
        config: TrainingConfig,
        new_job: NewJob,
        claim: IdempotencyClaim | None = None,
    ) -> JobRecord:
        """Validate, admit and enqueue a job as one step; the caller holds the submit lock,
        so concurrent submits and retries cannot pass a tenant's ``max_queued`` together.
        Validation reads the feature store (a file system, or S3) in a thread, so the
        actor's other work goes on meanwhile."""
        await asyncio.to_thread(self._validate, tenant_id, config)
        self._admission.admit(tenant_id, self._queue.queued_of(tenant_id))
        return await self._enqueue(new_job, claim)

    async def _enqueue(self, new_job: NewJob, claim: IdempotencyClaim | None = None) -> JobRecord:
        job = await self._store.create_job(
            new_job, logs=[service_log(new_job.job_id, "queued")], idempotency=claim
        )
        self._queue.push(job.job_id, job.tenant_id, job.priority, job.created_at)
        self._wakeup.set()
        return job

    async def _dispatch_forever(self) -> None:
        """Recover, then start queued jobs while capacity allows; no failure ends the loop."""
        while True:
            try:
                if not self._recovered.is_set():
                    await self._recover()
                    self._recovered.set()
                if self._reload_queue:
                    await self._load_queued()
                    self._reload_queue = False
                while len(self._running) < self._capacity and (
                    job_id := self._queue.pop(self._at_limit)
                ):
                    await self._start(job_id)
            except Exception as exc:
                if isinstance(exc, ServiceUnavailable):
                    self._metrics.database_error()
                    self._reload_queue = True
                logger.exception("dispatch step failed; retrying")
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_SECONDS)

    def _validate_scheduled(self, job: Mapping[str, Any]) -> None:
        submission = JobSubmission.model_validate(job)
        try:
            self._validate(submission.tenant_id, submission.config)
        except InvalidRequest as exc:
            raise InvalidRequest(f"job.{exc.field}", exc.message) from exc

    async def _submit_scheduled(
        self, submission: JobSubmission, key: str, schedule: ScheduleRecord, fire_time: datetime
    ) -> JobRecord:
        fire = ScheduledFire(schedule.schedule_id, fire_time)
        job, _created = await self.submit_once(submission, key, fire)
        return job

    async def _fire_forever(self) -> None:
        """Fire due schedules every ``schedule_poll_seconds``; no failure ends the loop."""
        await self._recovered.wait()
        while True:
            try:
                await self.fire_schedules()
            except Exception:
                logger.exception("firing schedules failed; trying again")
            await asyncio.sleep(self._settings.schedule_poll_seconds)

    def _running_of(self, tenant_id: str) -> int:
        return sum(1 for r in self._running.values() if r.tenant_id == tenant_id)

    def _at_limit(self, tenant_id: str) -> bool:
        return not self._admission.may_start(tenant_id, self._running_of(tenant_id))

    async def _watch_forever(self) -> None:
        """Run the stuck-job watchdog every ``stuck_job_seconds``."""
        await self._recovered.wait()
        while True:
            await asyncio.sleep(self._settings.stuck_job_seconds)
            try:
                await self._reclaim_stuck()
            except Exception:
                logger.exception("stuck-job watchdog failed; trying again")

    async def _purge_forever(self) -> None:
        """Apply the retention policy every ``retention.interval_hours``."""
        interval = self._settings.retention.interval_hours * 3600
        while True:
            try:
                await self.cleanup()
            except Exception:
                logger.exception("retention run failed; trying again at the next interval")
            await asyncio.sleep(interval)

    async def _recover(self) -> None:
        """Re-queue (or fail) jobs a previous incarnation was running; load the queue."""
        for job in await self._store.jobs_in_status(JobStatus.RUNNING):
            await self._interrupted(job, "the orchestrator or a worker was lost")
        await self._load_queued()

    async def _load_queued(self) -> None:
        """Queue every job the database says is queued (pushing a queued one is a no-op)."""
        for job in await self._store.jobs_in_status(JobStatus.QUEUED):
            self._queue.push(job.job_id, job.tenant_id, job.priority, job.created_at)

    async def _reclaim_stuck(self) -> None:
        """The stuck-job watchdog: a job the database says is running, that no follower of
        this orchestrator tracks and that has not moved for ``stuck_job_seconds`` (e.g. a
        second orchestrator died with it), is re-queued or failed like an interrupted one."""
        stale = self._clock() - timedelta(seconds=self._settings.stuck_job_seconds)
        for job in await self._store.jobs_in_status(JobStatus.RUNNING):
            if job.job_id not in self._running and job.updated_at < stale:
                logger.warning("job %s is running but untracked; reclaiming it", job.job_id)
                if await self._interrupted(job, "its tasks were gone (stuck-job watchdog)"):
                    self._queue.push(job.job_id, job.tenant_id, job.priority, job.created_at)
                    self._wakeup.set()

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
                logs=[service_log(job.job_id, message, level)],
            )
        except IllegalTransition:
            return False
        return event is JobEvent.REQUEUE

    async def _start(self, job_id: str) -> None:
        try:
            job = await self._store.transition(
                job_id, JobEvent.START, logs=[service_log(job_id, "started", node=_node_id())]
            )
        except IllegalTransition:
            self._cancel_before_launch.discard(job_id)
            return
        if job_id in self._cancel_before_launch:
            self._cancel_before_launch.discard(job_id)
            return  # cancelled while it was being started: never launch it
        if job.started_at is not None:
            self._metrics.job_started((job.started_at - job.created_at).total_seconds())
        context = JobContext(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            model_type=job.model_type,
            model_name=job.model_name,
            config=TrainingConfig.model_validate(job.config),
        )
        if context.config.enable_hpo:
            self._searches[job_id] = SearchRecorder(self._store, job)
        run = launch(context, self._pipeline, self._self)
        recorder = StageRecorder(self._store, job)
        follower = asyncio.get_running_loop().create_task(self._follow(job, run, recorder))
        self._running[job_id] = _RunningJob(job.tenant_id, run, recorder, follower)

    async def _follow(self, job: JobRecord, run: PipelineRun, recorder: StageRecorder) -> None:
        """Record each stage as it finishes, then complete or fail the job."""
        outcome = JobStatus.FAILED
        try:
            for report_ref in run.reports:
                report = await report_ref
                if self._running[job.job_id].cancelled:
                    run.cancel()  # the stage that started after the cancel request
                    continue
                self._metrics.stage_finished(report.stage, report.seconds)
                await self._durably(recorder.record, report)
            saved: SavedModel = await run.outputs[-1]
            await self._complete(job, saved, recorder.metrics)
            outcome = JobStatus.COMPLETED
        except (RayError, TrainingError) as exc:
            if not self._running[job.job_id].cancelled:
                await self._fail(job, exc)
        except Exception as exc:
            logger.exception("following job %s failed", job.job_id)
            await self._fail(job, exc)
        finally:
            if self._running[job.job_id].cancelled:
                outcome = JobStatus.CANCELLED
            self._metrics.job_finished(outcome)
            self._running.pop(job.job_id, None)
            self._searches.pop(job.job_id, None)
            self._versions.release(job.job_id)
            self._wakeup.set()

    async def _complete(self, job: JobRecord, saved: SavedModel, metrics: dict[str, Any]) -> None:
        model = NewModel(
            tenant_id=job.tenant_id,
            model_name=job.model_name,
            model_type=job.model_type,
            version=saved.version,
            feature_set=job.feature_set,
            artifact_uri=saved.artifact_uri,
            metrics=saved.metrics,
            params=saved.params,
            features=saved.features,
            promote=TrainingConfig.model_validate(job.config).promote_champion,
            feature_importance=saved.feature_importance,
        )
        try:
            await self._durably(
                self._store.transition,
                job.job_id,
                JobEvent.COMPLETE,
                metrics=metrics,
                model=model,
                logs=[service_log(job.job_id, f"completed; registered model {model.model_id}")],
            )
        except IllegalTransition:
            current = await self._durably(self._store.get_job, job.job_id)
            if current.model_id != model.model_id:  # not a retried commit: nobody owns it
                Location(saved.artifact_uri).delete_dir()

    async def _fail(self, job: JobRecord, exc: BaseException) -> None:
        cause = exc.cause if isinstance(exc, RayTaskError) else exc
        if isinstance(exc, TaskCancelledError):
            message = "a pipeline task was cancelled"
        elif isinstance(cause, TrainingError):
            message = cause.message
        else:
            message = f"{type(cause).__name__}: {cause}"
        if isinstance(cause, NodeDiedError | WorkerCrashedError):
            attempts = self._pipeline.stage_max_retries + 1
            message = f"a stage lost its worker node in each of {attempts} attempt(s): {message}"
        lines = []
        if isinstance(cause, StageFailed):
            lines = [to_new_log(job.job_id, line) for line in cause.logs]
            lines.append(service_log(job.job_id, cause.trace, LogLevel.ERROR, stage=cause.stage))
        lines.append(service_log(job.job_id, f"failed: {message}", LogLevel.ERROR))
        with contextlib.suppress(IllegalTransition):
            await self._durably(
                self._store.transition,
                job.job_id,
                JobEvent.FAIL,
                error_message=message,
                logs=lines,
            )

    async def _durably(
        self, write: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A write of the job's outcome, retried while the database is unreachable."""
        return await durably(self._settings.database_outage_seconds, write, *args, **kwargs)


def _node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def orchestrator_options(settings: OrchestratorSettings) -> dict[str, Any]:
    """Detached, named, restarted forever, holding no CPU (it only coordinates), and on the
    head node, so losing a worker node never takes the queue's keeper with it."""
    return {
        "name": settings.actor_name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": -1,
        "num_cpus": 0,
        "resources": {HEAD_NODE_RESOURCE: 0.001},
        "get_if_exists": True,
    }


def start_orchestrator(
    database_url: str, pipeline: PipelineSettings, settings: OrchestratorSettings
) -> ActorHandle[JobOrchestrator]:
    """Create the orchestrator, or return the running one with that name."""
    actor = ray.remote(JobOrchestrator).options(**orchestrator_options(settings))
    return cast(ActorHandle[JobOrchestrator], actor.remote(database_url, pipeline, settings))
