"""Batch forecasts and detections: a coordinator task and one task per chunk of series, in
the CPUs the orchestrator reserved for the forecast.

The coordinator only plans (from the set's key columns) and gathers the chunks' forecast
rows; each chunk task reads its own series' window from the feature store, so the
coordinator holds no history (and runs in the reservation, off the head node). One chunk
task runs per reserved CPU, the next as one ends (``fan_out``): chunk tasks never wait in
Ray's queue. A detection (``ForecastTask.kind``) runs the same way, each chunk scoring
its window (``pipeline.forecasting.detection``); its events are written next to its rows.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import ray
from ray import ObjectRef

from domain.forecasts import ForecastKind
from pipeline.forecast_files import write_forecast_parts
from pipeline.forecasting.batch import (
    FORECAST_FILE,
    ForecastChunk,
    ForecastOutcome,
    ForecastTask,
    forecast_chunk,
    forecast_directory,
    plan_forecast,
    read_chunk,
)
from pipeline.forecasting.detection import (
    DETECTION_FILE,
    EVENTS_FILE,
    Window,
    detect_chunk,
    gathered_events,
    plan_detection,
    read_window,
)
from pipeline.graph.fanout import Starter, in_order
from pipeline.models.artifacts import ModelArtifact, load_artifact, load_metadata
from pipeline.placement import Placement
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore


@functools.lru_cache(maxsize=4)
def _artifact(model_uri: str) -> ModelArtifact:
    """A worker's loaded models (artifacts never change), so its next chunk skips the load."""
    return load_artifact(Location(model_uri))


@dataclass(frozen=True)
class Part:
    """One chunk's rows, and a detection's events."""

    rows: pd.DataFrame
    events: pd.DataFrame | None = None


def _forecast_part(task: ForecastTask, settings: PipelineSettings, chunk: ForecastChunk) -> Part:
    """One chunk's forecast (or detection) rows, from the window of the set it reads itself."""
    artifact = _artifact(task.model_uri)
    store = FeatureStore(settings.features_root, task.tenant_id)
    if task.kind is ForecastKind.DETECTION:
        detected = detect_chunk(
            artifact, read_window(store, artifact.metadata, chunk), _window(task)
        )
        return Part(detected.rows, detected.events)
    history = read_chunk(store, artifact.metadata, chunk)
    return Part(forecast_chunk(artifact, history, task.horizon))


_remote_forecast_part = ray.remote(_forecast_part)


def submit_chunk(
    task: ForecastTask,
    settings: PipelineSettings,
    number: int,
    chunk: ForecastChunk,
    options: dict[str, Any],
) -> ObjectRef[Part]:
    """Start chunk ``number``'s task, ``forecast:<id>:<number>``, with the Ray options
    of the reserved CPU it runs in."""
    ref: ObjectRef[Part] = _remote_forecast_part.options(
        name=f"forecast:{task.forecast_id}:{number}", **options
    ).remote(task, settings, chunk)
    return ref


def forecast_chunks(
    task: ForecastTask,
    settings: PipelineSettings,
    plan: list[ForecastChunk],
    progress: Callable[[float], None] | None,
    placement: Placement,
) -> Generator[Part, None, None]:
    """The forecast rows of every chunk of ``plan``, in its order (each as soon as it and
    those before it have ended), one task per CPU of ``placement`` at a time, telling
    ``progress`` the share done as each ends; on a failure the running ones are
    cancelled."""

    def starter(number: int, chunk: ForecastChunk) -> Starter[Part]:
        return lambda options: submit_chunk(task, settings, number, chunk, options)

    starters = [starter(number, chunk) for number, chunk in enumerate(plan)]
    return in_order(starters, placement.workers(), "forecast", progress=progress)


def run_forecast(
    task: ForecastTask,
    settings: PipelineSettings,
    progress: Callable[[float], None] | None,
    placement: Placement,
) -> ForecastOutcome:
    """The coordinator of a batch forecast or a detection: plan it from the set's key
    columns, run its chunks as one-CPU tasks ``forecast:<id>:<n>`` (``forecast_chunks``),
    write one Parquet file of their rows (and one of a detection's events).

    Raises:
        InvalidRequest: the model or the set changed since the request was accepted.
    """
    store = FeatureStore(settings.features_root, task.tenant_id)
    metadata = load_metadata(Location(task.model_uri))
    detection = task.kind is ForecastKind.DETECTION
    if detection:
        window = _window(task)
        _, plan = plan_detection(
            store,
            metadata,
            task.feature_set,
            task.series,
            window.start,
            window.end,
            version=task.version,
        )
    else:
        plan = plan_forecast(
            store, metadata, task.feature_set, task.horizon, task.series, version=task.version
        )
    directory = forecast_directory(settings.artifacts_root, task.tenant_id, task.forecast_id)
    location = directory / (DETECTION_FILE if detection else FORECAST_FILE)
    found: list[pd.DataFrame] = []  # a detection's events: a few rows a chunk
    # A failed write closes the chunks' generator, which cancels their running tasks.
    with contextlib.closing(forecast_chunks(task, settings, plan, progress, placement)) as parts:

        def tables() -> Iterator[pa.Table]:
            """Each chunk's rows as it ends, in the plan's order: its series are sorted,
            and so is the file, without all of its rows in this task at once."""
            for part in parts:
                if part.events is not None:
                    found.append(part.events)
                yield pa.Table.from_pandas(part.rows, preserve_index=False)

        rows = write_forecast_parts(location, tables())
    if not detection:
        return ForecastOutcome(rows=rows, artifact_uri=str(location))
    events = gathered_events(found)
    (directory / EVENTS_FILE).write_parquet(pa.Table.from_pandas(events, preserve_index=False))
    return ForecastOutcome(rows=rows, artifact_uri=str(location), events=len(events))


def _window(task: ForecastTask) -> Window:
    assert task.window_start is not None
    assert task.window_end is not None
    return Window.of(task.window_start, task.window_end)


_remote_forecast = ray.remote(max_retries=0)(run_forecast)


def launch_forecast(
    task: ForecastTask,
    settings: PipelineSettings,
    progress: Callable[[float], None] | None,
    placement: Placement,
) -> ObjectRef[ForecastOutcome]:
    """Start a batch forecast's coordinator in its reservation (0 CPUs: it only waits on
    its parts)."""
    ref: ObjectRef[ForecastOutcome] = _remote_forecast.options(
        name=f"forecast:{task.forecast_id}", **placement.stage_options(0)
    ).remote(task, settings, progress, placement)
    return ref
