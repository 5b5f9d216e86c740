"""Running jobs: reserve, start, follow, complete, fail and cancel.

Each running job is one ``RunningJob``: its demand, its pipeline run, its recorders and
whether it was cancelled (``VersionClaims`` holds its model version until it ends). It
exists from the moment the job leaves the queue until its follower has written the
outcome, so a cancel that arrives while the job is being started finds it, and nothing
about the job is left behind when it ends.

A job leaves the queue when ``actors.dispatch`` says it fits; its placement groups are
made then (``Reservations``), and it turns ``running`` only once Ray has placed every
one of them: no job runs without its CPUs. Jobs are launched into their reservation
through the ``launch`` it is given (the orchestrator gives ``pipeline.graph.launch``),
so it runs without Ray in tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import ParamSpec, TypeVar

from ray.exceptions import RayError

from actors.admission import Admission
from actors.admitting import Admitted, Admitter
from actors.autoscaler import Wanted
from actors.dispatch import Rules
from actors.durable import BackgroundWrites, durably
from actors.metrics import ServiceMetrics
from actors.outcomes import JobOutcomes
from actors.queue import JobQueue
from actors.recorder import RunStores, SearchRecorder, StageRecorder, service_log
from actors.reservations import Reservations
from actors.running import Launch, LaunchedRun, RunningJob
from actors.versions import VersionClaims
from actors.waiting import QueueStatus
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.records import JobRecord
from domain.clock import utcnow
from domain.errors import IllegalTransition, TrainingError
from domain.events import JobEvent
from domain.jobs import JobStatus, LogLevel
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.job_callbacks import JobCallbacks
from pipeline.placement import Bundle, Placement
from pipeline.resources import Demand
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.settings import PipelineSettings

logger = logging.getLogger(__name__)

#: How long a cancelled job's running task may take to stop before its worker is killed.
CANCEL_GRACE_SECONDS = 5.0
#: How long a dispatch pass waits for the jobs it starts to be placed before it returns
#: (they go on being placed after it).
SETTLE_SECONDS = 2.0

P = ParamSpec("P")
T = TypeVar("T")


class Lifecycle:
    """Starts queued jobs in reservations of their CPUs and sees each one to its end."""

    def __init__(
        self,
        store: JobStore,
        experiments: ExperimentCatalog,
        pipeline: PipelineSettings,
        queue: JobQueue,
        admission: Admission,
        metrics: ServiceMetrics,
        *,
        reservations: Reservations,
        rules: Rules,
        placement_timeout: float,
        outage_seconds: float,
        versions: VersionClaims,
        launch: Launch,
        callbacks_for: Callable[[JobContext], JobCallbacks],
        node_id: str,
        wake: Callable[[], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._clock = clock
        self._store = store
        self._run_stores = RunStores(store, experiments, clock)
        self._pipeline = pipeline
        self._queue = queue
        self._admission = admission
        self._metrics = metrics
        self._admitter = Admitter(
            queue,
            admission,
            reservations,
            rules,
            placement_timeout=placement_timeout,
            wake=wake,
            clock=clock,
        )
        self._placement_timeout = placement_timeout
        self._outage_seconds = outage_seconds
        self._launch_run = launch
        self._callbacks_for = callbacks_for
        self._node_id = node_id
        #: Wakes the dispatch loop: CPUs were freed, or work waits for them.
        self._wake = wake
        self._running: dict[str, RunningJob] = {}
        self._versions = versions
        self._outcomes = JobOutcomes(
            store,
            stage_attempts=pipeline.stage_max_retries + 1,
            outage_seconds=outage_seconds,
            clock=clock,
        )
        self._background = BackgroundWrites(outage_seconds)
        #: A job was lost between the queue and its start (``take_lost``).
        self._lost = False

    # ------------------------------------------------------------------ the queue's end

    async def start_queued(self) -> None:
        """Start the queued jobs that fit (``actors.dispatch``), taking trial slots back
        for urgent ones and giving them back where they fit; wait a moment for the
        started jobs to be placed, and pass again while some ended before they ran (a
        failed launch, a cancel) and so freed their CPUs."""
        while await self._start_pass():
            pass

    async def _start_pass(self) -> bool:
        """One pass; returns whether a job it started has already ended."""
        admitted, logs = self._admitter.admit(self._running)
        if logs:
            self._background.write(self._store.append_logs, logs)
        started = [self._admit(job) for job in admitted]
        if not started:
            return False
        await asyncio.wait(
            [asyncio.ensure_future(running.settled.wait()) for running in started],
            timeout=SETTLE_SECONDS,
        )
        return any(job.job_id not in self._running for job in admitted)

    async def reserve(self, holder: str, demand: Demand) -> Placement:
        """Reserve ``demand`` for work that is not a queued job (``Admitter.reserve``)."""
        return await self._admitter.reserve(holder, demand)

    def release(self, holder: str) -> None:
        """Free what ``reserve`` reserved for ``holder``."""
        self._admitter.release(holder)

    def tracks(self, job_id: str) -> bool:
        return job_id in self._running

    @property
    def running(self) -> int:
        return len(self._running)

    def demand(self) -> tuple[list[Wanted], list[Wanted]]:
        """The bundles of what holds CPUs, and of what may start once it has them
        (``Admitter.demand``)."""
        return self._admitter.demand(self._running)

    def held_cpus(self, job_id: str) -> int | None:
        """The CPUs a running job holds now; None if it is not running here."""
        return self._admitter.held_cpus(job_id) if job_id in self._running else None

    def trial_slots(self, job_id: str) -> list[Bundle]:
        """The placed trial slots of a running job's search."""
        return self._admitter.trial_slots(job_id) if job_id in self._running else []

    def queue_statuses(self, ids: list[str], tenant_only: bool = False) -> dict[str, QueueStatus]:
        """Where each of the jobs that is queued stands and why it waits, in one pass."""
        return self._admitter.queue_statuses(ids, self._running, tenant_only)

    def _admit(self, job: Admitted) -> RunningJob:
        """Follow a job that left the queue, from its placement on."""
        running = self._running[job.job_id] = RunningJob(
            job.tenant_id, job.priority, job.demand, passed=job.passed
        )
        task = asyncio.get_running_loop().create_task(self._start(job.job_id, running))
        running.tasks += (task,)
        return running

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
            running.stopping.set()
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
            placing = self._running.get(job.job_id)
            if placing is not None:  # left the queue, not yet placed: it never runs
                placing.cancelled = True
                placing.stopping.set()
        return [job.job_id for job in jobs]

    async def _force_cancel(self, job_id: str) -> None:
        """Kill the worker of a cancelled job whose task ignored the request (a cancel can
        be lost when it races with the task's start), so its CPUs come back."""
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
        running = self._running.get(job_id)
        if running is not None and running.search is not None:
            written = await self._durably(running.search.record, trial, progress)
            for fresh in written:  # a resumed search's finished trials are counted once
                self._metrics.trial_finished(fresh.state)

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

    async def _start(self, job_id: str, running: RunningJob) -> None:
        """Wait for the job's reservation, then mark it running and launch it there; a
        reservation Ray does not place in time goes back, and the job to the queue. A
        job lost on the way (the database gone for longer than the outage allowance)
        stays queued in the database; ``take_lost`` tells the dispatch loop to reload."""
        try:
            running.placed = await self._admitter.placed(job_id, running.stopping)
            if running.placed:
                await self._launch_placed(job_id, running)
            elif running.cancelled:
                self._end(job_id, JobStatus.CANCELLED)
            else:
                await self._requeue(job_id, running)
        except Exception:  # the service's own (an outage) or not (a pool timeout, a deadlock)
            logger.exception("starting job %s failed; the queue is reloaded", job_id)
            self._lost = True
        finally:
            if self._running.get(job_id) is running and not running.launched:
                self._end(job_id)  # not a later start of the job, once requeued
            running.settled.set()

    async def _launch_placed(self, job_id: str, running: RunningJob) -> None:
        started = service_log(
            job_id, "started", self._clock(), node=self._node_id, cpus=running.demand.cpus
        )
        try:
            job = await self._durably(
                self._store.transition, job_id, JobEvent.START, logs=[started]
            )
        except IllegalTransition:  # cancelled while it waited, or a retried commit
            job = await self._durably(self._store.get_job, job_id)
            if job.status is not JobStatus.RUNNING:
                self._end(job_id, JobStatus.CANCELLED)
                return
        if running.cancelled:  # cancelled while it was being started: never launch it
            self._end(job_id, JobStatus.CANCELLED)
            return
        if job.started_at is not None:
            self._metrics.job_started((job.started_at - job.created_at).total_seconds())
        try:
            run, recorder = self._launch(job, running)
        except Exception as exc:  # nothing runs for it: fail it and free its CPUs
            logger.exception("launching job %s failed", job_id)
            try:
                await self._outcomes.fail(job, exc)
            finally:
                self._end(job_id, JobStatus.FAILED)
            return
        running.launched = True
        follower = asyncio.get_running_loop().create_task(self._follow(job, running, run, recorder))
        running.tasks += (follower,)

    async def _requeue(self, job_id: str, running: RunningJob) -> None:
        """Put back a job whose reservation Ray did not place within the timeout. It is
        followed here until it is back in the queue, so that a cancel arriving meanwhile
        finds it in one place or the other."""
        job = await self._durably(self._store.get_job, job_id)
        if running.cancelled or job.status is not JobStatus.QUEUED:
            cancelled = running.cancelled or job.status is JobStatus.CANCELLED
            self._end(job_id, JobStatus.CANCELLED if cancelled else None)
            return
        self._end(job_id)
        self._queue.push(job_id, job.tenant_id, job.priority, job.created_at, running.demand)
        message = (
            f"its {running.demand.cpus} CPUs were not placed within "
            f"{self._placement_timeout:g}s; back in the queue"
        )
        logger.warning("job %s: %s", job_id, message)
        await self._durably(
            self._store.append_logs,
            [service_log(job_id, message, self._clock(), LogLevel.WARNING)],
        )

    def take_lost(self) -> bool:
        """Whether a job was lost between the queue and its start since last asked (the
        database says it is queued; the queue must be reloaded to find it)."""
        lost, self._lost = self._lost, False
        return lost

    def _launch(self, job: JobRecord, running: RunningJob) -> tuple[LaunchedRun, StageRecorder]:
        context = JobContext(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            model_type=job.model_type,
            model_name=job.model_name,
            config=TrainingConfig.model_validate(job.config),
        )
        recorder = running.recorder = StageRecorder(self._run_stores, job)
        if context.config.enable_hpo:
            running.search = SearchRecorder(self._run_stores, job)
        placement = self._admitter.placement(job.job_id)
        run = running.run = self._launch_run(context, self._callbacks_for(context), placement)
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
            await self._outcomes.complete(job, saved, recorder.metrics)
            outcome = JobStatus.COMPLETED
        except (RayError, TrainingError) as exc:
            if not running.cancelled:
                await self._outcomes.fail(job, exc)
        except Exception as exc:
            logger.exception("following job %s failed", job.job_id)
            await self._outcomes.fail(job, exc)
        finally:
            self._end(job.job_id, JobStatus.CANCELLED if running.cancelled else outcome)

    def _end(self, job_id: str, outcome: JobStatus | None = None) -> None:
        """Forget a job that left the queue: its reservation, its version claim, its tasks."""
        del self._running[job_id]
        self._admitter.release(job_id)
        self._versions.release(job_id)
        if outcome is not None:
            self._metrics.job_finished(outcome)
            self._wake()

    async def _durably(
        self, write: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A write of the job's outcome, retried while the database is unreachable."""
        return await durably(self._outage_seconds, write, *args, **kwargs)
