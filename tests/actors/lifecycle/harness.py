"""The lifecycle without Ray, for its tests: fakes for the launcher (a run whose stage
reports and model a test hands out), the placement groups (placed at once unless held back)
and the job callbacks, a job store whose starts wait at a gate, and the ``Harness`` that
queues jobs and waits for their end (over a real SQLite database: ``conftest``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from actors.ledger import Ledger, Nodes
from actors.lifecycle import Lifecycle
from actors.queue import ONE_CPU, JobQueue
from actors.reservations import Reservations
from actors.waiting import QueueStatus
from db.database import Database
from db.jobs import JobStore
from db.records import JobRecord
from domain.events import JobEvent
from domain.jobs import JobPriority, JobStatus
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.models.register import SavedModel
from pipeline.placement import Bundle, Placement
from pipeline.promotion import ChampionRef
from pipeline.resources import Demand
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.stages import StageReport
from pipeline.storage import Location
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
        #: How many of the next removals fail, as with the GCS unreachable.
        self.failing_removals = 0

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
        if self.failing_removals:
            self.failing_removals -= 1
            raise RuntimeError("GCS unavailable (test)")
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

    def queue_status(self, job_id: str) -> QueueStatus | None:
        return self.lifecycle.queue_statuses([job_id]).get(job_id)

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
