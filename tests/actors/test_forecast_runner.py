"""Batch forecasts run and recorded without Ray: a run's outcome or its error lands in the
forecast's row, and recovery runs an interrupted forecast again or gives it up after
``max_attempts``. A real SQLite store; only the coordinator's launch is fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import RayTaskError, WorkerCrashedError

from actors.forecasts import ForecastRunner
from db.database import Database
from db.forecasts import ForecastStore
from db.records import ForecastRecord, ModelRecord, NewForecast
from db.registry import ModelRegistry
from domain.clock import utcnow
from domain.errors import PipelineError, ServiceUnavailable
from domain.events import JobEvent
from domain.forecasts import ForecastStatus
from pipeline.forecasting.batch import ForecastOutcome, ForecastTask
from pipeline.placement import Bundle, Placement
from pipeline.resources import Demand
from pipeline.settings import PipelineSettings
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from tests.databases import migrated_store
from tests.db.factories import new_job, new_model

MAX_ATTEMPTS = 2
TOO_SHORT = PipelineError("series 'm1' has too little history")
#: The domain error as awaiting the coordinator's ref raises it.
IN_RAY_TASK = RayTaskError("forecast", "Traceback ...", TOO_SHORT)  # type: ignore[no-untyped-call]


class Launcher:
    """The fake ``launch``: records each task, reports half its progress, and returns a
    future the test resolves (or raises the error a test set for every launch)."""

    def __init__(self) -> None:
        self.tasks: dict[str, ForecastTask] = {}
        self.outcomes: dict[str, asyncio.Future[ForecastOutcome]] = {}
        self.error: Exception | None = None
        self.placements: dict[str, Placement] = {}

    def __call__(
        self, task: ForecastTask, progress: Callable[[float], None], placement: Placement
    ) -> asyncio.Future[ForecastOutcome]:
        self.tasks[task.forecast_id] = task
        self.placements[task.forecast_id] = placement
        if self.error is not None:
            raise self.error
        progress(0.5)
        outcome = self.outcomes[task.forecast_id] = asyncio.get_running_loop().create_future()
        return outcome

    async def launched(
        self, forecast_id: str, timeout: float = 5
    ) -> asyncio.Future[ForecastOutcome]:
        deadline = time.monotonic() + timeout
        while forecast_id not in self.outcomes:
            assert time.monotonic() < deadline, f"forecast {forecast_id} was not launched"
            await asyncio.sleep(0.005)
        return self.outcomes[forecast_id]


class Reserver:
    """The fake ``reserve`` and ``release``: grants each demand at once, unless a test
    closes the gate, and remembers what is held."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.held: dict[str, Demand] = {}

    async def reserve(self, holder: str, demand: Demand) -> Placement:
        await self.open.wait()
        self.held[holder] = demand
        return Placement(tuple(Bundle(None, i, cpus) for i, cpus in enumerate(demand.bundles)))

    def release(self, holder: str) -> None:
        del self.held[holder]


@dataclass
class Harness:
    forecasts: ForecastStore
    runner: ForecastRunner
    launcher: Launcher
    model: ModelRecord
    #: (forecast, progress) as the coordinators reported them.
    progress: list[tuple[str, float]]
    reserver: Reserver

    async def create(self) -> str:
        forecast = NewForecast(self.model.tenant_id, self.model.model_id, "forecast_basic", 24)
        return (await self.forecasts.create(forecast, utcnow())).forecast_id

    async def settled(self, forecast_id: str, timeout: float = 5) -> ForecastRecord:
        """The forecast's row once it has completed or failed."""
        deadline = time.monotonic() + timeout
        while True:
            forecast = await self.forecasts.get(forecast_id)
            if forecast.status in (ForecastStatus.COMPLETED, ForecastStatus.FAILED):
                return forecast
            assert time.monotonic() < deadline, f"forecast {forecast_id} is {forecast.status}"
            await asyncio.sleep(0.005)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_store("sqlite", tmp_path) as store:
        job = await store.create_job(new_job())
        await store.transition(job.job_id, JobEvent.START)
        await store.transition(job.job_id, JobEvent.COMPLETE, model=new_model())
        yield store.database


@pytest.fixture
async def harness(database: Database, tmp_path: Path) -> AsyncIterator[Harness]:
    """A runner over the database; afterwards, ends the runs a test left going."""
    registry = ModelRegistry(database)
    model = await registry.get(new_model().model_id)
    forecasts = ForecastStore(database)
    launcher = Launcher()
    reserver = Reserver()
    progress: list[tuple[str, float]] = []
    runner = ForecastRunner(
        forecasts,
        registry,
        PipelineSettings(data_dir=tmp_path),
        max_attempts=MAX_ATTEMPTS,
        outage_seconds=1.0,
        clock=utcnow,
        launch=launcher,
        progress_for=lambda forecast_id: lambda share: progress.append((forecast_id, share)),
        reserve=reserver.reserve,
        release=reserver.release,
        cpus=2,
    )
    harness = Harness(forecasts, runner, launcher, model, progress, reserver)
    yield harness
    for forecast_id, outcome in launcher.outcomes.items():
        if not outcome.done():
            outcome.set_exception(PipelineError("the test ended"))
            await harness.settled(forecast_id)


async def test_a_forecast_that_runs_is_completed_with_its_rows_and_file(harness: Harness) -> None:
    forecast_id = await harness.create()

    await harness.runner.recover()
    outcome = await harness.launcher.launched(forecast_id)
    running = await harness.forecasts.get(forecast_id)
    outcome.set_result(ForecastOutcome(rows=48, artifact_uri="/artifacts/forecast.parquet"))
    forecast = await harness.settled(forecast_id)

    assert (running.status, running.attempts) == (ForecastStatus.RUNNING, 1)
    assert forecast.status is ForecastStatus.COMPLETED
    assert (forecast.rows, forecast.artifact_uri) == (48, "/artifacts/forecast.parquet")
    assert forecast.progress == 1.0
    assert forecast.error is None
    task = harness.launcher.tasks[forecast_id]
    assert (task.model_uri, task.feature_set, task.horizon, task.series) == (
        harness.model.artifact_uri,
        "forecast_basic",
        24,
        None,
    )
    assert harness.progress == [(forecast_id, 0.5)]


@pytest.mark.parametrize(
    ("error", "when"),
    [(TOO_SHORT, "launch"), (TOO_SHORT, "outcome"), (IN_RAY_TASK, "outcome")],
    ids=["launch", "outcome", "ray-task"],
)
async def test_a_forecast_whose_run_fails_is_failed_with_the_domain_errors_message(
    harness: Harness, error: Exception, when: str
) -> None:
    forecast_id = await harness.create()
    if when == "launch":
        harness.launcher.error = error

    await harness.runner.recover()
    if when == "outcome":
        (await harness.launcher.launched(forecast_id)).set_exception(error)
    forecast = await harness.settled(forecast_id)

    assert forecast_id in harness.launcher.tasks
    assert forecast.status is ForecastStatus.FAILED
    assert forecast.error == TOO_SHORT.message
    assert forecast.rows is None


async def test_recovery_runs_an_interrupted_forecast_again_and_gives_up_at_max_attempts(
    harness: Harness,
) -> None:
    forecasts = harness.forecasts
    interrupted, exhausted, queued = [await harness.create() for _ in range(3)]
    assert await forecasts.start(interrupted, utcnow())  # its run was lost
    for attempt in range(MAX_ATTEMPTS):  # every run it was allowed was lost
        if attempt:
            assert await forecasts.requeue(exhausted)
        assert await forecasts.start(exhausted, utcnow())

    await harness.runner.recover()
    reruns = [await harness.launcher.launched(f) for f in (interrupted, queued)]
    await harness.runner.recover()  # again: the runs it started are left alone

    given_up = await forecasts.get(exhausted)
    assert given_up.status is ForecastStatus.FAILED
    assert given_up.error == (
        f"interrupted {MAX_ATTEMPTS} times (the orchestrator or a worker was lost while it "
        f"ran); giving up after {MAX_ATTEMPTS} attempts"
    )
    assert set(harness.launcher.tasks) == {interrupted, queued}
    for rerun in reruns:
        rerun.set_result(ForecastOutcome(rows=24, artifact_uri="/artifacts/forecast.parquet"))
    again, first = await harness.settled(interrupted), await harness.settled(queued)
    assert (again.status, again.attempts) == (ForecastStatus.COMPLETED, 2)
    assert (first.status, first.attempts) == (ForecastStatus.COMPLETED, 1)


async def test_a_forecast_waits_queued_for_its_cpus_runs_in_them_and_frees_them(
    harness: Harness,
) -> None:
    harness.reserver.open.clear()  # every CPU is reserved by jobs
    forecast_id = await harness.create()
    await harness.runner.recover()
    await asyncio.sleep(0.05)
    assert (await harness.forecasts.get(forecast_id)).status is ForecastStatus.QUEUED
    assert forecast_id not in harness.launcher.tasks

    harness.reserver.open.set()
    deadline = time.monotonic() + 5
    while forecast_id not in harness.launcher.outcomes:
        assert time.monotonic() < deadline, "the forecast never started"
        await asyncio.sleep(0.005)
    assert harness.reserver.held == {f"forecast:{forecast_id}": Demand((1, 1))}
    assert len(harness.launcher.placements[forecast_id].workers()) == 2
    harness.launcher.outcomes[forecast_id].set_result(ForecastOutcome(24, "memory://fc"))
    await harness.settled(forecast_id)
    assert harness.reserver.held == {}


async def test_a_database_blip_as_a_forecast_starts_does_not_fail_it(harness: Harness) -> None:
    forecast_id = await harness.create()
    start = harness.forecasts.start
    blips = [ServiceUnavailable("connection reset")]

    async def blipping(*args: Any) -> bool:
        if blips:
            raise blips.pop()
        return await start(*args)

    harness.forecasts.start = blipping  # type: ignore[method-assign, assignment]
    await harness.runner.recover()
    (await harness.launcher.launched(forecast_id)).set_result(ForecastOutcome(24, "memory://f"))
    forecast = await harness.settled(forecast_id)
    assert forecast.status is ForecastStatus.COMPLETED, forecast.error


async def test_an_outcome_the_outage_kept_from_its_row_is_run_again_by_the_watchdog(
    harness: Harness,
) -> None:
    """Its row says running with no run of it here: the next recovery (the stuck-job
    watchdog's beat) runs it again, instead of leaving it running for good."""
    forecast_id = await harness.create()
    complete = harness.forecasts.complete

    async def down(*args: Any) -> bool:
        raise ServiceUnavailable("the database is down")

    harness.forecasts.complete = down  # type: ignore[method-assign, assignment]
    await harness.runner.recover()
    (await harness.launcher.launched(forecast_id)).set_result(ForecastOutcome(24, "memory://f"))
    deadline = time.monotonic() + 10
    while harness.runner.runs(forecast_id):  # outage_seconds of retries, then given up
        assert time.monotonic() < deadline, "the outcome's write was never given up"
        await asyncio.sleep(0.05)
    assert (await harness.forecasts.get(forecast_id)).status is ForecastStatus.RUNNING

    harness.forecasts.complete = complete  # type: ignore[method-assign]
    del harness.launcher.outcomes[forecast_id]
    await harness.runner.recover()
    (await harness.launcher.launched(forecast_id)).set_result(ForecastOutcome(24, "memory://f"))
    forecast = await harness.settled(forecast_id)
    assert (forecast.status, forecast.attempts) == (ForecastStatus.COMPLETED, 2)


async def test_predictions_that_all_had_their_actuals_are_not_kept(harness: Harness) -> None:
    rows = [{"timestamp": "2024-01-01T00:00:00Z", "series": None, "predicted": 1.0, "actual": 2.0}]
    assert await harness.runner.log_predictions(harness.model.model_id, rows) is None
    assert await harness.forecasts.in_status(ForecastStatus.COMPLETED) == []


async def test_an_outage_inside_a_forecasts_own_tasks_fails_it_with_its_reason(
    harness: Harness,
) -> None:
    """Only the runner's own database calls wait for the watchdog: a forecast whose task
    met a locked set fails at once with that reason, not as 'interrupted N times'."""
    forecast_id = await harness.create()
    await harness.runner.recover()
    locked = ServiceUnavailable("feature set 'meters' is locked; retry")
    (await harness.launcher.launched(forecast_id)).set_exception(locked)
    forecast = await harness.settled(forecast_id)
    assert (forecast.status, forecast.error) == (ForecastStatus.FAILED, locked.message)


async def test_a_forecast_whose_coordinator_lost_its_worker_is_run_again(
    harness: Harness,
) -> None:
    """A preempted node or an OOM kill is not the forecast's fault: like an interrupted
    one, the watchdog's next recovery runs it again (up to ``max_attempts``)."""
    forecast_id = await harness.create()
    await harness.runner.recover()
    (await harness.launcher.launched(forecast_id)).set_exception(WorkerCrashedError())
    deadline = time.monotonic() + 5
    while harness.runner.runs(forecast_id):
        assert time.monotonic() < deadline, "the lost run was never let go"
        await asyncio.sleep(0.01)
    assert (await harness.forecasts.get(forecast_id)).status is ForecastStatus.RUNNING

    del harness.launcher.outcomes[forecast_id]
    await harness.runner.recover()
    (await harness.launcher.launched(forecast_id)).set_result(ForecastOutcome(24, "memory://f"))
    forecast = await harness.settled(forecast_id)
    assert (forecast.status, forecast.attempts) == (ForecastStatus.COMPLETED, 2)


async def test_a_running_forecast_pins_the_version_it_reads_for_retention(
    harness: Harness, tmp_path: Path
) -> None:
    """The set's current version when the forecast starts is the one its tasks read, and
    retention keeps it (``versions_in_use``) until the forecast ends, though newer
    versions replace it meanwhile."""
    features = FeatureStore(PipelineSettings(data_dir=tmp_path).features_root, "tenant-a")
    stored = features.put(
        "forecast_basic",
        load_series(seed=1, hours=48),
        timestamp_column="timestamp",
        target_column="load_kw",
    )
    forecast_id = await harness.create()
    await harness.runner.recover()
    outcome = await harness.launcher.launched(forecast_id)
    assert harness.launcher.tasks[forecast_id].version == stored.pinned_version
    assert harness.runner.versions_in_use() == {stored.pinned_version}

    outcome.set_result(ForecastOutcome(rows=24, artifact_uri="/artifacts/forecast.parquet"))
    await harness.settled(forecast_id)
    deadline = time.monotonic() + 5
    while harness.runner.versions_in_use():
        assert time.monotonic() < deadline, "the version stayed pinned"
        await asyncio.sleep(0.01)
