"""Running jobs: start, follow, complete, fail and cancel.

Each running job is one ``RunningJob``: its pipeline run, its recorders and whether it was
cancelled (``VersionClaims`` holds its model version until it ends). It exists from the
moment the job leaves the queue until its follower has written the outcome, so a cancel
that arrives while the job is being started finds it, and nothing about the job is left
behind when it ends. Jobs are launched through the ``launch`` it is given (the orchestrator
gives ``pipeline.graph.launch``), so it runs without Ray in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from ray.exceptions import RayError

from actors.admission import Admission
from actors.capacity import Capacity, job_cpus
from actors.durable import durably
from actors.failures import describe_failure
from actors.metrics import ServiceMetrics
from actors.queue import JobQueue
from actors.recorder import RunStores, SearchRecorder, StageRecorder, service_log
from actors.versions import VersionClaims
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.records import JobRecord, NewModel
from domain.clock import utcnow
from domain.errors import IllegalTransition, TrainingError
from domain.events import JobEvent
from domain.jobs import JobStatus
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.job_callbacks import JobCallbacks
from pipeline.models.register import SavedModel
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.settings import PipelineSettings
from pipeline.stages import StageReport
from pipeline.storage import Location

logger = logging.getLogger(__name__)

#: How long a cancelled job's running task may take to stop before its worker is killed.
CANCEL_GRACE_SECONDS = 5.0

P = ParamSpec("P")
T = TypeVar("T")


class LaunchedRun(Protocol):
    """What the lifecycle follows of a launched job (``pipeline.graph.launch.PipelineRun``)."""

    @property
    def reports(self) -> Sequence[Awaitable[StageReport]]:
        """Each stage's report, in running order; a failed stage's raises its error."""
        ...

    @property
    def result(self) -> Awaitable[SavedModel]:
        """The model the last stage registered."""
        ...

    def cancel(self, force: bool = False) -> None:
        """Stop the stage that is running (``force``: kill its worker)."""
        ...


#: Starts a job's stages and returns at once (``pipeline.graph.launch``).
Launch = Callable[[JobContext, JobCallbacks], LaunchedRun]


@dataclass
class RunningJob:
    """One job between leaving the queue and its outcome being written."""

    tenant_id: str
    #: The CPUs its training holds (``capacity.job_cpus``), once known.
    cpus: int = 1
    cancelled: bool = False
    #: Set once launched (a job cancelled while starting is never launched).
    run: LaunchedRun | None = None
    recorder: StageRecorder | None = None
    search: SearchRecorder | None = None
    #: Held here: the event loop keeps only weak references to tasks.
    tasks: tuple[asyncio.Task[None], ...] = ()


@dataclass(frozen=True)
class QueueStatus:
    position: int
    waiting_reason: str


class Lifecycle:
    """Starts queued jobs within capacity and sees each one to its end."""

    def __init__(
        self,
        store: JobStore,
        experiments: ExperimentCatalog,
        pipeline: PipelineSettings,
        queue: JobQueue,
        admission: Admission,
        metrics: ServiceMetrics,
        *,
        capacity: Capacity,
        outage_seconds: float,
        versions: VersionClaims,
        launch: Launch,
        callbacks_for: Callable[[JobContext], JobCallbacks],
        node_id: str,
        on_finished: Callable[[], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._clock = clock
        self._store = store
        self._run_stores = RunStores(store, experiments, clock)
        self._pipeline = pipeline
        self._queue = queue
        self._admission = admission
        self._metrics = metrics
        self._capacity = capacity
        self._outage_seconds = outage_seconds
        self._launch_run = launch
        self._callbacks_for = callbacks_for
        self._node_id = node_id
        self._on_finished = on_finished
        self._running: dict[str, RunningJob] = {}
        self._versions = versions

    # ------------------------------------------------------------------ the queue's end

    async def start_queued(self) -> None:
        """Start queued jobs while capacity and the tenants' limits allow."""
        while len(self._running) < self._capacity.slots and (
            popped := self._queue.pop(self._at_limit)
        ):
            await self._start(popped.job_id, popped.tenant_id)

    def tracks(self, job_id: str) -> bool:
        return job_id in self._running

    @property
    def running(self) -> int:
        return len(self._running)

    def demand(self) -> tuple[list[int], list[int]]:
        """The CPUs of each running job, and of each queued job in queue order."""
        return [r.cpus for r in self._running.values()], self._queue.cpus()

    def queue_status(self, job_id: str) -> QueueStatus | None:
        """Where a queued job stands and why it waits; None if it is not queued."""
        if job_id not in self._queue:
            return None
        tenant_id = self._queue.tenant_of(job_id)
        ahead, higher = self._queue.ahead_of(job_id)
        reason = self._admission.waiting_reason(
            tenant_id, self._running_of(tenant_id), ahead, higher, len(self._running)
        )
        return QueueStatus(position=ahead + 1, waiting_reason=reason)

    # ------------------------------------------------------------------ cancelling

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job at once, or a running one and its Ray tasks.

        Raises:
            JobNotFound, IllegalTransition (the job has finished).
        """
        job = await self._store.transition(
            job_id,
            JobEvent.CANCEL,
            logs=[service_log(job_id, "cancelled on request", self._clock())],
        )
        if self._queue.remove(job_id):
            self._metrics.job_finished(JobStatus.CANCELLED)
        running = self._running.get(job_id)
        if running is not None and not running.cancelled:
            running.cancelled = True  # a job still starting sees this and is never launched
            if running.run is not None:
                running.run.cancel()
                watchdog = asyncio.get_running_loop().create_task(self._force_cancel(job_id))
                running.tasks += (watchdog,)
        return job

    async def cancel_queued(self, tenant_id: str) -> list[str]:
        """Cancel every queued job of a tenant at once (one transaction); their ids."""
        message = "cancelled on request, with the tenant's other queued jobs"
        jobs = await self._store.cancel_queued(
            tenant_id, lambda j: service_log(j, message, self._clock())
        )
        for job in jobs:
            if self._queue.remove(job.job_id):
                self._metrics.job_finished(JobStatus.CANCELLED)
        return [job.job_id for job in jobs]

    async def _force_cancel(self, job_id: str) -> None:
        """Kill the worker of a cancelled job whose task ignored the request (a cancel can
        be lost when it races with the task's start), so its slot and CPU come back."""
        await asyncio.sleep(CANCEL_GRACE_SECONDS)
        running = self._running.get(job_id)
        if running is not None and running.run is not None:
            logger.warning(
                "job %s did not stop within %ss; killing its task", job_id, CANCEL_GRACE_SECONDS
            )
            running.run.cancel(force=True)

    # ------------------------------------------------------------------ calls from stages

    def cancelled(self, job_id: str) -> bool | None:
        """Whether a job this orchestrator runs was cancelled; None if it runs none such."""
        running = self._running.get(job_id)
        return None if running is None else running.cancelled

    async def record_trial(self, job_id: str, trial: TrialReport, progress: SearchProgress) -> None:
        self._metrics.trial_finished(trial.state)
        running = self._running.get(job_id)
        if running is not None and running.search is not None:
            await running.search.record(trial, progress)

    async def record_live_metrics(self, job_id: str, scores: dict[str, float]) -> None:
        running = self._running.get(job_id)
        if running is not None and running.recorder is not None and not running.cancelled:
            await running.recorder.record_live(scores)

    async def claim_version(
        self, job_id: str, tenant_id: str, model_name: str, now: datetime
    ) -> str:
        """The version the job's register stage saves its model as (see ``VersionClaims``),
        waiting out a database outage as the job's own writes do."""
        return await self._durably(self._versions.claim, job_id, tenant_id, model_name, now)

    # ------------------------------------------------------------------ one job

    async def _start(self, job_id: str, tenant_id: str) -> None:
        running = self._running[job_id] = RunningJob(tenant_id)
        try:
            job = await self._store.transition(
                job_id,
                JobEvent.START,
                logs=[service_log(job_id, "started", self._clock(), node=self._node_id)],
            )
        except IllegalTransition:  # cancelled while it waited to start
            self._end(job_id)
            return
        except BaseException:
            self._end(job_id)
            raise
        if running.cancelled:  # cancelled while it was being started: never launch it
            self._end(job_id, JobStatus.CANCELLED)
            return
        if job.started_at is not None:
            self._metrics.job_started((job.started_at - job.created_at).total_seconds())
        try:
            run, recorder = self._launch(job, running)
        except Exception as exc:  # nothing runs for it: fail it and free its slot
            logger.exception("launching job %s failed", job_id)
            await self._fail(job, exc)
            self._end(job_id, JobStatus.FAILED)
            return
        follower = asyncio.get_running_loop().create_task(self._follow(job, running, run, recorder))
        running.tasks += (follower,)

    def _launch(self, job: JobRecord, running: RunningJob) -> tuple[LaunchedRun, StageRecorder]:
        context = JobContext(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            model_type=job.model_type,
            model_name=job.model_name,
            config=TrainingConfig.model_validate(job.config),
        )
        running.cpus = job_cpus(context.config)
        recorder = running.recorder = StageRecorder(self._run_stores, job)
        if context.config.enable_hpo:
            running.search = SearchRecorder(self._run_stores, job)
        run = running.run = self._launch_run(context, self._callbacks_for(context))
        return run, recorder

    async def _follow(
        self, job: JobRecord, running: RunningJob, run: LaunchedRun, recorder: StageRecorder
    ) -> None:
        """Record each stage as it finishes, then complete or fail the job."""
        outcome = JobStatus.FAILED
        try:
            for report_ref in run.reports:
                report = await report_ref
                if running.cancelled:
                    run.cancel()  # the stage that started after the cancel request
                    continue
                self._metrics.stage_finished(report.stage, report.seconds)
                await self._durably(recorder.record, report)
            saved = await run.result
            await self._complete(job, saved, recorder.metrics)
            outcome = JobStatus.COMPLETED
        except (RayError, TrainingError) as exc:
            if not running.cancelled:
                await self._fail(job, exc)
        except Exception as exc:
            logger.exception("following job %s failed", job.job_id)
            await self._fail(job, exc)
        finally:
            self._end(job.job_id, JobStatus.CANCELLED if running.cancelled else outcome)

    def _end(self, job_id: str, outcome: JobStatus | None = None) -> None:
        """Forget a job that left the queue: its slot, its version claim, its tasks."""
        del self._running[job_id]
        self._versions.release(job_id)
        if outcome is not None:
            self._metrics.job_finished(outcome)
            self._on_finished()

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
            feature_set_version=saved.feature_set_version,
        )
        try:
            await self._durably(
                self._store.transition,
                job.job_id,
                JobEvent.COMPLETE,
                metrics=metrics,
                model=model,
                logs=[
                    service_log(
                        job.job_id, f"completed; registered model {model.model_id}", self._clock()
                    )
                ],
            )
        except IllegalTransition:
            current = await self._durably(self._store.get_job, job.job_id)
            if current.model_id != model.model_id:  # not a retried commit: nobody owns it
                # In a thread: on an object store, deleting is many calls; the loop goes on.
                await asyncio.to_thread(Location(saved.artifact_uri).delete_dir)

    async def _fail(self, job: JobRecord, exc: BaseException) -> None:
        stage_attempts = self._pipeline.stage_max_retries + 1
        message, lines = describe_failure(job.job_id, exc, stage_attempts, self._clock())
        with contextlib.suppress(IllegalTransition):
            await self._durably(
                self._store.transition,
                job.job_id,
                JobEvent.FAIL,
                error_message=message,
                logs=lines,
            )

    def _running_of(self, tenant_id: str) -> int:
        return sum(1 for r in self._running.values() if r.tenant_id == tenant_id)

    def _at_limit(self, tenant_id: str) -> bool:
        return not self._admission.may_start(tenant_id, self._running_of(tenant_id))

    async def _durably(
        self, write: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A write of the job's outcome, retried while the database is unreachable."""
        return await durably(self._outage_seconds, write, *args, **kwargs)
