"""Batch forecasts and detections on the orchestrator: accept, run, record, recover.

A request is checked against the model and the feature set before its row is written
(a refused one writes nothing); it waits for its CPUs (``reserve``: the orchestrator
reserves them as the jobs' are, ahead of queued jobs), then a coordinator task runs it
in them (started through the ``launch`` it is given: the orchestrator gives
``pipeline.graph.forecast.launch_forecast``) while this class awaits the outcome and
records it. The row is the truth: a forecast a
previous orchestrator was running is run again at recovery, or failed once it has been
interrupted ``max_attempts`` times. Recovery runs again on the stuck-job watchdog's
beat, so a forecast whose start or outcome could not be written through a database
outage (its row still queued or running, no run of it here) is run again too, not left
so for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from ray.exceptions import (
    NodeDiedError,
    ObjectLostError,
    RayError,
    RayTaskError,
    WorkerCrashedError,
)

from actors.durable import durably
from db.forecasts import ForecastStore
from db.records import ExpiredForecast, ForecastRecord, NewForecast
from db.registry import ModelRegistry
from domain.errors import FeatureSetNotFound, ServiceUnavailable, TrainingError
from domain.forecasts import ForecastKind, ForecastStatus
from pipeline.forecast_files import write_forecast
from pipeline.forecasting.batch import (
    ForecastOutcome,
    ForecastTask,
    check_request,
    forecast_directory,
    forecast_location,
)
from pipeline.forecasting.detection import check_detection
from pipeline.forecasting.output import logged_forecast
from pipeline.models.artifacts import feature_spec_of, load_metadata
from pipeline.placement import Placement
from pipeline.resources import TASK_CPUS, Demand
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Makes the callback a forecast's coordinator reports its progress through.
ProgressFor = Callable[[str], Callable[[float], None]]
#: Starts a forecast's coordinator in its reservation with its progress callback; its
#: outcome is awaited.
LaunchForecast = Callable[
    [ForecastTask, Callable[[float], None], Placement], Awaitable[ForecastOutcome]
]
#: Reserves CPUs for a holder, returning once they are placed (``Lifecycle.reserve``).
Reserve = Callable[[str, Demand], Awaitable[Placement]]


#: Errors of a coordinator whose worker or node was lost (a preempted node, an OOM kill):
#: its row stays running, so the watchdog's next recovery runs it again, counting the attempt.
LOST_WORKER = (WorkerCrashedError, NodeDiedError, ObjectLostError)


class ForecastRunner:
    def __init__(
        self,
        store: ForecastStore,
        registry: ModelRegistry,
        pipeline: PipelineSettings,
        *,
        max_attempts: int,
        outage_seconds: float,
        clock: Callable[[], datetime],
        launch: LaunchForecast,
        progress_for: ProgressFor,
        reserve: Reserve,
        release: Callable[[str], None],
        cpus: int,
    ) -> None:
        self._store = store
        self._registry = registry
        self._pipeline = pipeline
        self._max_attempts = max_attempts
        self._outage_seconds = outage_seconds
        self._clock = clock
        self._launch = launch
        self._progress_for = progress_for
        self._reserve = reserve
        self._release = release
        #: What each forecast holds: one bundle per chunk it runs at once.
        self._demand = Demand((TASK_CPUS,) * cpus)
        self._running: dict[str, asyncio.Task[None]] = {}
        #: The set's version each running forecast reads: retention keeps them.
        self._reading: dict[str, str] = {}

    async def submit(self, forecast: NewForecast) -> ForecastRecord:
        """Check the request, write its row (``queued``) and start it. A detection is kept
        with its resolved window and its model's horizon.

        Raises:
            ModelNotFound, InvalidRequest (on ``feature_set``, ``horizon`` or ``series``;
            a detection's on ``model_type``, ``start`` or ``end``).
        """
        model = await self._registry.get(forecast.model_id)
        features = FeatureStore(self._pipeline.features_root, model.tenant_id)
        metadata = await asyncio.to_thread(load_metadata, Location(model.artifact_uri))
        if forecast.kind is ForecastKind.DETECTION:
            window = await asyncio.to_thread(
                check_detection,
                features,
                metadata,
                forecast.feature_set,
                forecast.series,
                forecast.window_start,
                forecast.window_end,
            )
            forecast = replace(
                forecast,
                horizon=feature_spec_of(metadata).horizon,
                window_start=window.start.to_pydatetime(),
                window_end=window.end.to_pydatetime(),
            )
        else:
            await asyncio.to_thread(
                check_request,
                features,
                metadata,
                forecast.feature_set,
                forecast.horizon,
                forecast.series,
            )
        record = await self._store.create(forecast, self._clock())
        self._start(record.forecast_id)
        return record

    async def log_predictions(
        self, model_id: str, predictions: Sequence[Mapping[str, Any]]
    ) -> ForecastRecord | None:
        """Keep a request's forecasts (its rows without an actual) as a completed forecast
        of the model's feature set, so that monitoring scores them when their actuals
        arrive; None, and nothing kept, when every row had its actual.

        Raises:
            ModelNotFound.
        """
        table = logged_forecast(predictions)
        if not table.num_rows:
            return None
        model = await self._registry.get(model_id)
        metadata = await asyncio.to_thread(load_metadata, Location(model.artifact_uri))
        forecast = NewForecast(
            tenant_id=model.tenant_id,
            model_id=model.model_id,
            feature_set=model.feature_set,
            horizon=int(metadata["feature_spec"]["horizon"]),
        )
        location = forecast_location(
            self._pipeline.artifacts_root, model.tenant_id, forecast.forecast_id
        )
        await asyncio.to_thread(write_forecast, location, table)
        return await self._store.add_logged(forecast, table.num_rows, str(location), self._clock())

    async def record_progress(self, forecast_id: str, progress: float) -> None:
        await self._store.set_progress(forecast_id, progress)

    def versions_in_use(self) -> set[str]:
        """The feature-set versions the running forecasts read (``Housekeeping.purge``)."""
        return set(self._reading.values())

    def runs(self, forecast_id: str) -> bool:
        """Whether a run of the forecast goes on here (waiting for CPUs, or recording)."""
        return forecast_id in self._running

    async def recover(self) -> None:
        """Run again (or fail) the forecasts a previous orchestrator was running, and start
        the queued ones."""
        for forecast in await self._store.in_status(ForecastStatus.RUNNING):
            if self.runs(forecast.forecast_id):
                continue
            if forecast.attempts >= self._max_attempts:
                message = (
                    f"interrupted {forecast.attempts} times (the orchestrator or a worker was "
                    f"lost while it ran); giving up after {self._max_attempts} attempts"
                )
                await self._store.fail(forecast.forecast_id, message, self._clock())
            else:
                logger.warning("forecast %s was interrupted; running it again", forecast)
                await self._store.requeue(forecast.forecast_id)
        for forecast in await self._store.in_status(ForecastStatus.QUEUED):
            self._start(forecast.forecast_id)

    def _start(self, forecast_id: str) -> None:
        if forecast_id in self._running:
            return
        task = asyncio.get_running_loop().create_task(self._run(forecast_id))
        self._running[forecast_id] = task
        task.add_done_callback(lambda _: self._running.pop(forecast_id, None))

    async def _run(self, forecast_id: str) -> None:
        holder = f"forecast:{forecast_id}"
        try:
            placement = await self._reserve(holder, self._demand)
        except Exception as exc:
            logger.exception("forecast %s got no CPUs", forecast_id)
            await self._record(self._store.fail, forecast_id, _reason(exc), self._clock())
            return
        try:
            await self._run_in(forecast_id, placement)
        finally:
            self._reading.pop(forecast_id, None)
            self._release(holder)

    async def _run_in(self, forecast_id: str, placement: Placement) -> None:
        try:
            if not await self._durably(self._store.start, forecast_id, self._clock()):
                return  # another run took it, or it has finished
            forecast = await self._durably(self._store.get, forecast_id)
            model = await self._durably(self._registry.get, forecast.model_id)
        except ServiceUnavailable:  # not the forecast's fault: the watchdog runs it again
            logger.exception("forecast %s waits for the database", forecast_id)
            return
        except Exception as exc:
            logger.exception("forecast %s failed", forecast_id)
            await self._record(self._store.fail, forecast_id, _reason(exc), self._clock())
            return
        try:
            version = await asyncio.to_thread(self._current_version, forecast)
            if version is not None:
                self._reading[forecast_id] = version
            task = ForecastTask(
                forecast_id=forecast_id,
                tenant_id=forecast.tenant_id,
                model_uri=model.artifact_uri,
                feature_set=forecast.feature_set,
                horizon=forecast.horizon,
                series=forecast.series,
                kind=forecast.kind,
                window_start=forecast.window_start,
                window_end=forecast.window_end,
                version=version,
            )
            outcome = await self._launch(task, self._progress_for(forecast_id), placement)
        except LOST_WORKER as exc:  # not the forecast's fault: the watchdog runs it again
            logger.warning("forecast %s lost its coordinator: %s", forecast_id, exc)
            return
        except Exception as exc:  # the forecast fails, the orchestrator goes on
            logger.exception("forecast %s failed", forecast_id)
            await self._record(self._store.fail, forecast_id, _reason(exc), self._clock())
            return
        await self._record(
            self._store.complete,
            forecast_id,
            outcome.rows,
            outcome.artifact_uri,
            self._clock(),
            outcome.events,
        )

    def _current_version(self, forecast: ForecastRecord) -> str | None:
        """The version of the forecast's set it will read: the current one (None: the set
        is gone, which the plan reports)."""
        store = FeatureStore(self._pipeline.features_root, forecast.tenant_id)
        try:
            return store.schema(forecast.feature_set).pinned_version
        except FeatureSetNotFound:
            return None

    def remove_outputs(self, expired: Iterable[ExpiredForecast]) -> None:
        """Delete the files of forecasts whose rows retention deleted."""
        for forecast in expired:
            directory = forecast_directory(
                self._pipeline.artifacts_root, forecast.tenant_id, forecast.forecast_id
            )
            if directory.is_dir():
                directory.delete_dir()

    async def _record(self, write: Callable[..., Awaitable[bool]], *args: object) -> None:
        """A final write, retried through a database outage; given up on, the forecast is
        left running for the next recovery (the watchdog's beat, or a restart)."""
        try:
            await self._durably(write, *args)
        except TrainingError:
            logger.exception("could not record the outcome of forecast %s", args[0])

    async def _durably(self, call: Callable[..., Awaitable[T]], *args: object) -> T:
        return await durably(self._outage_seconds, call, *args)


def _reason(error: BaseException) -> str:
    """What a failed forecast says: a domain error's message, else Ray's."""
    if isinstance(error, RayTaskError) and isinstance(error.cause, TrainingError):
        return error.cause.message
    if isinstance(error, TrainingError):
        return error.message
    if isinstance(error, RayError):
        return f"the forecast's tasks failed: {str(error).splitlines()[0]}"
    return f"{type(error).__name__}: {error}"
