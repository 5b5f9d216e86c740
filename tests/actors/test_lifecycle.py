"""The lifecycle's decisions without Ray: queued jobs start once their reservations are
placed, within the free CPUs and the tenants' running limits; a run's reports and model
are written; a failed stage, a failed launch or a cancel (while the job is placed or
starts, or while it runs) each end the job and free its CPUs; an urgent job takes trial
slots back. The store is a real SQLite database; the launcher and the placement groups
are fakes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import TaskCancelledError, WorkerCrashedError

import actors.lifecycle
from actors.admission import Admission, TenantLimits
from actors.cluster import ClusterShape
from actors.dispatch import Rules
from actors.ledger import Ledger, Nodes
from actors.lifecycle import Lifecycle
from actors.metrics import ServiceMetrics
from actors.queue import ONE_CPU, JobQueue
from actors.reservations import Reservations
from actors.versions import VersionClaims
from db.database import Database
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.records import JobRecord
from db.registry import ModelRegistry
from domain.errors import PipelineError, TrainingError
from domain.events import JobEvent
from domain.jobs import JobPriority, JobStatus
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.models.register import SavedModel
from pipeline.placement import Bundle, Placement
from pipeline.promotion import ChampionRef
from pipeline.resources import Demand
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
    """The fake ``launch``: a ``FakeRun`` per job, or the error a test set for that job;
    it keeps the placement each job was launched into."""

    def __init__(self) -> None:
        self.runs: dict[str, FakeRun] = {}
        self.failing: dict[str, Exception] = {}
        self.placements: dict[str, Placement] = {}

    def __call__(self, context: JobContext, callbacks: object, placement: Placement) -> FakeRun:
        if context.job_id in self.failing:
            raise self.failing[context.job_id]
        self.placements[context.job_id] = placement
        run = self.runs[context.job_id] = FakeRun(stages=2)
        return run


@dataclass
class FakeGroup:
    name: str
    bundles: tuple[int, ...]
    placed: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False


class FakePlacementGroups:
    """Placement groups placed at once where the ledger booked them, unless a test
    holds them back (``hold``)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.made: list[FakeGroup] = []
        self.held = False
        #: Where a test says Ray put a group again (after its node left).
        self.moved: dict[str, Nodes] = {}

    def create(self, name: str, bundles: Sequence[int], spread: bool) -> FakeGroup:
        group = FakeGroup(name, tuple(bundles))
        if not self.held:
            group.placed.set()
        self.made.append(group)
        return group

    async def placed(self, handle: FakeGroup) -> Nodes:
        await handle.placed.wait()
        booked = self.ledger.group(handle.name)
        assert booked is not None, f"{handle.name} was never booked"
        return booked.nodes

    def where(self, handle: FakeGroup, bundles: int) -> Nodes:
        return self.moved[handle.name]

    def remove(self, handle: FakeGroup) -> None:
        handle.removed = True

    def slot(self, handle: FakeGroup, bundle: int, cpus: int) -> Bundle:
        return Bundle(None, bundle, cpus)

    def remove_named(self, prefix: str) -> int:
        return 0

    def live(self) -> list[str]:
        return [g.name for g in self.made if not g.removed]


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

    def champion(self) -> ChampionRef | None:
        raise AssertionError("a fake run compares no model itself")

    def trial_slots(self) -> list[Bundle]:
        return []


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
    launcher: Launcher
    ledger: Ledger
    groups: FakePlacementGroups
    reservations: Reservations

    async def queue_job(
        self,
        tenant_id: str = "tenant-a",
        demand: Demand = ONE_CPU,
        priority: JobPriority = JobPriority.NORMAL,
    ) -> str:
        job = await self.store.create_job(
            new_job(tenant_id=tenant_id, config=CONFIG.model_dump(mode="json"), priority=priority)
        )
        self.queue.push(job.job_id, job.tenant_id, job.priority, job.created_at, demand)
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
        cluster: ClusterShape | None = None,
        placement_timeout: float = 5.0,
    ) -> Harness:
        store = store or JobStore(database)
        queue = JobQueue()
        launcher = Launcher()
        ledger = Ledger(cluster or ClusterShape.of(capacity, max_cpus=max_cpus or capacity))
        groups = FakePlacementGroups(ledger)
        reservations = Reservations(ledger, groups, prefix="test:")
        lifecycle = Lifecycle(
            store,
            ExperimentCatalog(store.database),
            PipelineSettings(data_dir=tmp_path, stage_max_retries=STAGE_MAX_RETRIES),
            queue,
            Admission(TenantLimits(), limits or {}),
            ServiceMetrics(),
            reservations=reservations,
            rules=Rules(),
            placement_timeout=placement_timeout,
            outage_seconds=1.0,
            versions=VersionClaims(ModelRegistry(database)),
            launch=launcher,
            callbacks_for=Callbacks,
            node_id=NODE_ID,
            wake=lambda: None,
        )
        harness = Harness(store, queue, lifecycle, launcher, ledger, groups, reservations)
        made.append(harness)
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
    assert messages["started"] == {"node": NODE_ID, "cpus": 1}
    assert h.groups.live() == [], "its reservation was released"
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
    assert status.waiting_reason == "waiting for 1 CPU (0 of 2 free)"
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
    assert status.waiting_reason == "waiting for 1 CPU (0 of 2 free)"
    assert h.lifecycle.demand() == ([[1], [1]], [[1]] * 4)

    h.ledger.update(ClusterShape({"node-0": 2, "w1": 2, "w2": 2}))  # two workers joined
    await h.lifecycle.start_queued()
    assert set(h.launcher.runs) == set(jobs)
    assert h.lifecycle.demand() == ([[1]] * 6, [])

    h.ledger.update(ClusterShape.of(2, max_cpus=6))  # and left: running jobs go on
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


async def test_a_job_turns_running_only_once_its_reservation_is_placed(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=2)
    h.groups.held = True  # Ray has not placed it yet
    job_id = await h.queue_job(demand=Demand((2,)))

    await h.lifecycle.start_queued()

    assert await h.status(job_id) is JobStatus.QUEUED
    assert job_id not in h.launcher.runs
    assert h.ledger.held(job_id) == 2, "its CPUs are booked while Ray places them"
    status = h.lifecycle.queue_status(job_id)
    assert status is not None
    assert status.waiting_reason == "starting: Ray is placing its 2 CPUs"

    [group] = h.groups.made
    group.placed.set()
    deadline = time.monotonic() + 5
    while job_id not in h.launcher.runs:
        assert time.monotonic() < deadline, "the placed job never launched"
        await asyncio.sleep(0.01)
    assert await h.status(job_id) is JobStatus.RUNNING
    assert h.lifecycle.queue_status(job_id) is None


async def test_a_job_cancelled_while_it_is_placed_never_runs_and_frees_its_cpus(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=1)
    h.groups.held = True
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()

    await h.lifecycle.cancel(job_id)
    job = await h.ended(job_id)

    assert job.status is JobStatus.CANCELLED
    assert job_id not in h.launcher.runs
    assert h.groups.live() == []
    assert h.ledger.reserved == 0


async def test_a_reservation_not_placed_in_time_goes_back_and_its_job_to_the_queue(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=1, placement_timeout=0.1)
    h.groups.held = True  # e.g. CPUs taken by work outside the service
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()

    job = await h.ended(job_id)

    assert job.status is JobStatus.QUEUED
    assert job_id in h.queue
    assert h.groups.live() == []
    assert h.ledger.reserved == 0
    deadline = time.monotonic() + 5
    while not any("back in the queue" in log.message for log in await h.store.tail_logs(job_id, 5)):
        assert time.monotonic() < deadline, "no log line says why the job waits again"
        await asyncio.sleep(0.01)
    h.groups.held = False
    await h.lifecycle.start_queued()
    assert await h.status(job_id) is JobStatus.RUNNING


async def test_an_urgent_job_takes_trial_slots_back_and_the_search_gets_them_again(
    harness_of: MakeHarness,
) -> None:
    """A low-priority search holds the whole 4-CPU node (its stage bundle and three trial
    slots); an urgent one-CPU job takes one slot back, both jobs' logs say so, and the
    slot comes back once the urgent job has ended."""
    h = await harness_of(capacity=4)
    search = await h.queue_job(demand=Demand((1,), slots=3), priority=JobPriority.LOW)
    await h.lifecycle.start_queued()
    assert h.ledger.held(search) == 4
    assert len(h.lifecycle.trial_slots(search)) == 3

    urgent = await h.queue_job("tenant-b", priority=JobPriority.URGENT)
    await h.lifecycle.start_queued()

    assert await h.status(urgent) is JobStatus.RUNNING
    assert (h.ledger.held(search), h.ledger.held(urgent)) == (3, 1)
    assert len(h.lifecycle.trial_slots(search)) == 2
    deadline = time.monotonic() + 5
    while True:
        said = [log.message for log in await h.store.tail_logs(search, 20)]
        if any("taken back for urgent job" in m for m in said):
            break
        assert time.monotonic() < deadline, said
        await asyncio.sleep(0.01)
    urgent_said = [log.message for log in await h.store.tail_logs(urgent, 20)]
    assert f"starting on 1 CPU(s) taken back from job {search}" in urgent_said

    h.launcher.runs[urgent].fail(PipelineError("done with it"))
    await h.ended(urgent)
    await h.lifecycle.start_queued()
    deadline = time.monotonic() + 5
    while len(h.lifecycle.trial_slots(search)) < 3:
        assert time.monotonic() < deadline, "the search never got its slot back"
        await asyncio.sleep(0.01)
    assert h.ledger.held(search) == 4


async def test_a_batch_forecast_reserves_its_cpus_ahead_of_queued_jobs(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=2)
    job_id = await h.queue_job(demand=Demand((2,)))
    reserving = asyncio.create_task(h.lifecycle.reserve("forecast:f1", Demand((1, 1))))
    await asyncio.sleep(0)

    await h.lifecycle.start_queued()
    placement = await asyncio.wait_for(reserving, 5)

    assert len(placement.workers()) == 2
    assert await h.status(job_id) is JobStatus.QUEUED
    assert h.ledger.held("forecast:f1") == 2
    h.lifecycle.release("forecast:f1")
    assert h.ledger.reserved == 0
    await h.lifecycle.start_queued()
    assert await h.status(job_id) is JobStatus.RUNNING


async def test_a_group_on_a_node_that_left_is_booked_where_ray_placed_it_again(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(cluster=ClusterShape({"n0": 2, "n1": 2}))
    job_id = await h.queue_job(demand=Demand((2,)))
    await h.lifecycle.start_queued()
    [group] = h.ledger.groups_of(job_id)
    [gone] = group.nodes
    [kept] = {"n0", "n1"} - {gone}

    h.groups.moved[group.name] = (kept,)
    h.ledger.update(ClusterShape({kept: 2}))
    h.reservations.relocate()

    assert h.ledger.free() == {kept: 0}, "its CPUs are held where it is now"


async def test_a_tenants_queued_jobs_cancelled_at_once_include_one_being_placed(
    harness_of: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actors.lifecycle, "SETTLE_SECONDS", 0.05)
    h = await harness_of(capacity=1)
    h.groups.held = True
    placing, queued = await h.queue_job(), await h.queue_job()
    await h.lifecycle.start_queued()

    assert sorted(await h.lifecycle.cancel_queued("tenant-a")) == sorted([placing, queued])
    job = await h.ended(placing)

    assert job.status is JobStatus.CANCELLED
    assert placing not in h.launcher.runs
    assert h.groups.live() == []


async def test_a_forecast_waiting_for_ray_is_booked_once_however_many_passes_run(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=2)
    h.groups.held = True
    reserving = asyncio.create_task(h.lifecycle.reserve("forecast:f2", Demand((1,))))
    await asyncio.sleep(0)
    for _ in range(3):
        await h.lifecycle.start_queued()
    assert h.ledger.held("forecast:f2") == 1
    assert len(h.groups.made) == 1

    h.groups.made[0].placed.set()
    placement = await asyncio.wait_for(reserving, 5)
    assert len(placement.workers()) == 1
