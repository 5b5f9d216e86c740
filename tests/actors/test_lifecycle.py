"""The lifecycle's decisions without Ray: queued jobs start within the capacity and the
tenants' running limits; a run's reports and model are written; a failed stage, a failed
launch or a cancel (while the job starts, or while it runs) each end the job and free its
slot. The store is a real SQLite database; only the launcher is fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import TaskCancelledError, WorkerCrashedError

import actors.lifecycle
from actors.admission import Admission, TenantLimits
from actors.capacity import Capacity, ClusterSize
from actors.lifecycle import Lifecycle
from actors.metrics import ServiceMetrics
from actors.queue import JobQueue
from actors.versions import VersionClaims
from db.database import Database
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.records import JobRecord
from db.registry import ModelRegistry
from domain.errors import PipelineError, TrainingError
from domain.events import JobEvent
from domain.jobs import JobStatus
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.models.register import SavedModel
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.settings import PipelineSettings
from pipeline.stages import Stage, StageReport
from pipeline.storage import Location
from pipeline.summaries import LoadSummary
from tests.databases import migrated_store
from tests.db.factories import new_job

NODE_ID = "node-under-test"
#: Ray runs a stage this many times more after losing its worker.
STAGE_MAX_RETRIES = 3
CONFIG = TrainingConfig(feature_set="forecast_basic", horizon=24, target_variable="load_kw")


class FakeRun:
    """A launched job whose stage reports and model the test hands out."""

    def __init__(self, stages: int) -> None:
        loop = asyncio.get_running_loop()
        self.reports: list[asyncio.Future[StageReport]] = [
            loop.create_future() for _ in range(stages)
        ]
        self.result: asyncio.Future[SavedModel] = loop.create_future()
        #: ``force`` of each call to ``cancel``.
        self.cancels: list[bool] = []

    def cancel(self, force: bool = False) -> None:
        self.cancels.append(force)

    def fail(self, error: BaseException) -> None:
        """The running stage raises ``error``."""
        next(f for f in self.reports if not f.done()).set_exception(error)


class Launcher:
    """The fake ``launch``: a ``FakeRun`` per job, or the error a test set for that job."""

    def __init__(self) -> None:
        self.runs: dict[str, FakeRun] = {}
        self.failing: dict[str, Exception] = {}

    def __call__(self, context: JobContext, callbacks: object) -> FakeRun:
        if context.job_id in self.failing:
            raise self.failing[context.job_id]
        run = self.runs[context.job_id] = FakeRun(stages=2)
        return run


@dataclass(frozen=True)
class Callbacks:
    """The ``JobCallbacks`` handed to a launch; the fake runs never call them."""

    context: JobContext

    def is_cancelled(self) -> bool:
        return False

    def record_live_metrics(self, scores: dict[str, float]) -> None:
        return None

    def record_trial(self, trial: TrialReport, progress: SearchProgress) -> None:
        return None

    def claim_version(self, parent: Location, now: datetime) -> str:
        raise AssertionError("a fake run registers no model itself")


class StartGate(JobStore):
    """A job store whose START transitions wait for the test to open the gate: before
    their commit, or (``after_commit``) after it."""

    def __init__(self, database: Database, *, after_commit: bool) -> None:
        super().__init__(database)
        self.after_commit = after_commit
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def transition(self, job_id: str, event: JobEvent, **changes: Any) -> JobRecord:
        if event is not JobEvent.START:
            return await super().transition(job_id, event, **changes)
        if self.after_commit:
            job = await super().transition(job_id, event, **changes)
        self.reached.set()
        await self.opened.wait()
        if self.after_commit:
            return job
        return await super().transition(job_id, event, **changes)


@dataclass
class Harness:
    store: JobStore
    queue: JobQueue
    lifecycle: Lifecycle
    launcher: Launcher = field(default_factory=Launcher)
    capacity: Capacity = field(default_factory=lambda: Capacity(ClusterSize(1, 1)))

    async def queue_job(self, tenant_id: str = "tenant-a") -> str:
        job = await self.store.create_job(
            new_job(tenant_id=tenant_id, config=CONFIG.model_dump(mode="json"))
        )
        self.queue.push(job.job_id, job.tenant_id, job.priority, job.created_at)
        return job.job_id

    async def status(self, job_id: str) -> JobStatus:
        return (await self.store.get_job(job_id)).status

    async def ended(self, job_id: str, timeout: float = 5) -> JobRecord:
        """The job's row once the lifecycle has let go of the job."""
        deadline = time.monotonic() + timeout
        while self.lifecycle.tracks(job_id):
            assert time.monotonic() < deadline, f"job {job_id} did not end"
            await asyncio.sleep(0.005)
        return await self.store.get_job(job_id)


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_store("sqlite", tmp_path) as store:
        yield store.database


@pytest.fixture
async def harness_of(database: Database, tmp_path: Path) -> AsyncIterator[MakeHarness]:
    """Makes a lifecycle over the database; afterwards, stops the runs a test left going."""
    made: list[Harness] = []

    async def make(
        capacity: int = 1,
        limits: Mapping[str, TenantLimits] | None = None,
        store: JobStore | None = None,
        max_cpus: int | None = None,
    ) -> Harness:
        store = store or JobStore(database)
        queue = JobQueue()
        launcher = Launcher()
        slots = Capacity(ClusterSize(cpus=capacity, max_cpus=max_cpus or capacity))
        lifecycle = Lifecycle(
            store,
            ExperimentCatalog(store.database),
            PipelineSettings(data_dir=tmp_path, stage_max_retries=STAGE_MAX_RETRIES),
            queue,
            Admission(TenantLimits(), limits or {}, slots),
            ServiceMetrics(),
            capacity=slots,
            outage_seconds=1.0,
            versions=VersionClaims(ModelRegistry(database)),
            launch=launcher,
            callbacks_for=Callbacks,
            node_id=NODE_ID,
            on_finished=lambda: None,
        )
        made.append(harness := Harness(store, queue, lifecycle, launcher, slots))
        return harness

    yield make
    for harness in made:
        for job_id, run in harness.launcher.runs.items():
            if harness.lifecycle.tracks(job_id):
                run.fail(TaskCancelledError())
                await harness.ended(job_id)


def saved_model(tmp_path: Path) -> SavedModel:
    return SavedModel(
        version="20260101.000000",
        artifact_uri=str(tmp_path / "model"),
        metrics={"mae": 1.25},
        params={"num_leaves": 31},
        features=["hour", "lag_24"],
        feature_importance={"hour": 0.75, "lag_24": 0.25},
        feature_set_version="v1",
    )


async def test_a_job_runs_and_its_completion_registers_its_model(
    harness_of: MakeHarness, tmp_path: Path
) -> None:
    h = await harness_of()
    job_id = await h.queue_job()

    await h.lifecycle.start_queued()
    assert await h.status(job_id) is JobStatus.RUNNING
    run = h.launcher.runs[job_id]
    load = LoadSummary(rows=720, feature_set="forecast_basic", version="v1")
    run.reports[0].set_result(StageReport(Stage.LOAD_FEATURES, 0.1, 0.25, [], load))
    run.reports[1].set_result(StageReport(Stage.PREPROCESS, 0.2, 0.5, []))
    run.result.set_result(saved_model(tmp_path))
    job = await h.ended(job_id)

    assert job.status is JobStatus.COMPLETED
    assert job.feature_set_version == "v1"
    assert job.metrics is not None
    assert job.metrics["training_time_seconds"] == 0.75
    [model] = await ModelRegistry(h.store.database).of_job(job_id)
    assert job.model_id == model.model_id
    assert (model.version, model.artifact_uri) == ("20260101.000000", str(tmp_path / "model"))
    assert model.metrics == {"mae": 1.25}
    messages = {log.message: log.extra for log in await h.store.tail_logs(job_id, 20)}
    assert messages["started"] == {"node": NODE_ID}
    assert "load_features finished in 0.250s" in messages
    assert f"completed; registered model {model.model_id}" in messages
    assert run.cancels == []
    assert h.lifecycle.running == 0


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PipelineError("too few rows to train"), "too few rows to train"),
        (
            WorkerCrashedError(),
            f"a stage lost its worker node in each of {STAGE_MAX_RETRIES + 1} attempt(s): ",
        ),
    ],
    ids=["domain", "ray"],
)
async def test_a_failed_stage_fails_the_job_with_its_message_and_frees_its_slot(
    harness_of: MakeHarness, error: TrainingError | WorkerCrashedError, message: str
) -> None:
    h = await harness_of(capacity=1)
    first, second = await h.queue_job(), await h.queue_job()

    await h.lifecycle.start_queued()
    h.launcher.runs[first].reports[0].set_result(StageReport(Stage.LOAD_FEATURES, 0.1, 0.1, []))
    h.launcher.runs[first].fail(error)
    job = await h.ended(first)

    assert job.status is JobStatus.FAILED
    assert job.error_message is not None
    assert job.error_message.startswith(message)
    assert job.model_id is None
    await h.lifecycle.start_queued()
    assert await h.status(second) is JobStatus.RUNNING
    assert list(h.launcher.runs) == [first, second]


@pytest.mark.parametrize("after_commit", [False, True], ids=["before-commit", "after-commit"])
async def test_a_job_cancelled_while_it_starts_is_never_launched(
    harness_of: MakeHarness, database: Database, after_commit: bool
) -> None:
    gate = StartGate(database, after_commit=after_commit)
    h = await harness_of(capacity=1, store=gate)
    first, second = await h.queue_job(), await h.queue_job()

    starting = asyncio.create_task(h.lifecycle.start_queued())
    await gate.reached.wait()
    cancelled = await h.lifecycle.cancel(first)
    gate.opened.set()
    await starting

    assert cancelled.status is JobStatus.CANCELLED
    assert await h.status(first) is JobStatus.CANCELLED
    assert first not in h.launcher.runs
    assert not h.lifecycle.tracks(first)
    assert await h.status(second) is JobStatus.RUNNING  # the slot was freed for it
    assert list(h.launcher.runs) == [second]


async def test_a_launch_that_raises_fails_its_job_and_the_next_one_starts(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=1)
    first, second = await h.queue_job(), await h.queue_job()
    h.launcher.failing[first] = RuntimeError("the cluster is gone")

    await h.lifecycle.start_queued()

    job = await h.store.get_job(first)
    assert job.status is JobStatus.FAILED
    assert job.error_message == "RuntimeError: the cluster is gone"
    assert not h.lifecycle.tracks(first)
    assert await h.status(second) is JobStatus.RUNNING
    assert list(h.launcher.runs) == [second]


async def test_a_cancelled_run_that_does_not_stop_is_killed_after_the_grace_period(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "CANCEL_GRACE_SECONDS", 0.05)
    h = await harness_of()
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    run = h.launcher.runs[job_id]

    await h.lifecycle.cancel(job_id)
    assert run.cancels == [False]
    assert await h.status(job_id) is JobStatus.CANCELLED
    deadline = time.monotonic() + 5
    while run.cancels == [False]:
        assert time.monotonic() < deadline, "the run was never killed"
        await asyncio.sleep(0.01)
    assert run.cancels == [False, True]
    assert h.lifecycle.running == 1  # its slot is held until the run stops

    run.fail(TaskCancelledError())
    job = await h.ended(job_id)
    assert job.status is JobStatus.CANCELLED
    assert job.error_message is None
    assert h.lifecycle.running == 0


async def test_a_cancelled_run_that_stops_is_not_killed(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "CANCEL_GRACE_SECONDS", 0.05)
    h = await harness_of()
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    run = h.launcher.runs[job_id]

    await h.lifecycle.cancel(job_id)
    run.fail(TaskCancelledError())
    job = await h.ended(job_id)
    await asyncio.sleep(0.1)  # past the grace period

    assert run.cancels == [False]
    assert job.status is JobStatus.CANCELLED
    assert job.error_message is None


async def test_a_tenant_at_its_running_limit_waits_while_others_start(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=3, limits={"tenant-a": TenantLimits(max_running=1)})
    a1, a2 = await h.queue_job("tenant-a"), await h.queue_job("tenant-a")
    b1 = await h.queue_job("tenant-b")

    await h.lifecycle.start_queued()

    assert set(h.launcher.runs) == {a1, b1}
    assert await h.status(a2) is JobStatus.QUEUED
    status = h.lifecycle.queue_status(a2)
    assert status is not None
    assert status.waiting_reason == "tenant limit of 1 running jobs reached"
    h.launcher.runs[a1].fail(PipelineError("failed"))
    await h.ended(a1)
    await h.lifecycle.start_queued()
    assert await h.status(a2) is JobStatus.RUNNING


async def test_no_more_jobs_run_than_the_capacity(harness_of: MakeHarness) -> None:
    h = await harness_of(capacity=2)
    jobs = [await h.queue_job(tenant) for tenant in ("tenant-a", "tenant-b", "tenant-c")]

    await h.lifecycle.start_queued()

    assert list(h.launcher.runs) == jobs[:2]
    assert [await h.status(j) for j in jobs] == [JobStatus.RUNNING] * 2 + [JobStatus.QUEUED]
    status = h.lifecycle.queue_status(jobs[2])
    assert status is not None
    assert status.waiting_reason == "all 2 slots busy"
    await h.lifecycle.start_queued()  # nothing changed: nothing more starts
    assert list(h.launcher.runs) == jobs[:2]
    h.launcher.runs[jobs[0]].fail(PipelineError("failed"))
    await h.ended(jobs[0])
    await h.lifecycle.start_queued()
    assert list(h.launcher.runs) == jobs
    assert await h.status(jobs[2]) is JobStatus.RUNNING


async def test_more_jobs_start_as_the_cluster_grows_and_demand_counts_their_cpus(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=2, max_cpus=6)
    jobs = [await h.queue_job(f"tenant-{n}") for n in range(6)]

    await h.lifecycle.start_queued()
    assert list(h.launcher.runs) == jobs[:2]
    status = h.lifecycle.queue_status(jobs[2])
    assert status is not None
    assert status.waiting_reason == "all 2 slots busy; waiting for the cluster to grow"
    assert h.lifecycle.demand() == ([1, 1], [1, 1, 1, 1])

    h.capacity.update(ClusterSize(cpus=6, max_cpus=6))  # two 2-CPU workers joined
    await h.lifecycle.start_queued()
    assert list(h.launcher.runs) == jobs
    assert h.lifecycle.demand() == ([1] * 6, [])

    h.capacity.update(ClusterSize(cpus=2, max_cpus=6))  # and left: running jobs go on
    assert h.lifecycle.running == 6


async def test_a_slow_delete_of_an_orphaned_model_leaves_the_loop_responsive(
    harness_of: MakeHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that registers its model after its job was cancelled leaves files nobody
    owns; deleting them (on S3: many calls) happens beside the actor's loop, not on it."""
    delete_dir = Location.delete_dir

    def slow_delete(location: Location) -> None:  # an object store's delete, slowly
        time.sleep(1.0)
        delete_dir(location)

    monkeypatch.setattr(Location, "delete_dir", slow_delete)
    h = await harness_of()
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    run = h.launcher.runs[job_id]
    await h.lifecycle.cancel(job_id)
    saved = saved_model(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.txt").write_text("a booster")

    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    for report in run.reports:
        report.set_result(StageReport(Stage.PREPROCESS, 0.2, 0.5, []))
    run.result.set_result(saved)
    job = await h.ended(job_id)
    ticker.cancel()

    assert job.status is JobStatus.CANCELLED
    assert not (tmp_path / "model").exists()
    assert max(gaps) < 0.5, max(gaps)
