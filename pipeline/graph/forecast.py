"""Batch forecasts: a coordinator task and one task per chunk of series.

The coordinator only plans (from the set's key columns) and gathers the chunks' forecast
rows; each chunk task reads its own series' window from the feature store, so the
coordinator (on the head node, usually) holds no history. At most ``in_flight`` chunk
tasks are submitted at a time, the next as one ends: chunk tasks never wait in Ray's
queue, and what places them sees only tasks that can run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import pandas as pd
import pyarrow as pa
import ray
from ray import ObjectRef

from pipeline.forecasting.batch import (
    ForecastChunk,
    ForecastOutcome,
    ForecastTask,
    forecast_chunk,
    forecast_location,
    plan_forecast,
    read_chunk,
)
from pipeline.models.artifacts import ModelArtifact, load_artifact, load_metadata
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

#: Chunk tasks of one forecast submitted at once.
CHUNKS_IN_FLIGHT = 2


@functools.lru_cache(maxsize=4)
def _artifact(model_uri: str) -> ModelArtifact:
    """A worker's loaded models (artifacts never change), so its next chunk skips the load."""
    return load_artifact(Location(model_uri))


def _forecast_part(
    task: ForecastTask, settings: PipelineSettings, chunk: ForecastChunk
) -> pd.DataFrame:
    """One chunk's forecast rows, from the window of the set it reads itself."""
    artifact = _artifact(task.model_uri)
    store = FeatureStore(settings.features_root, task.tenant_id)
    return forecast_chunk(artifact, read_chunk(store, artifact.metadata, chunk), task.horizon)


_remote_forecast_part = ray.remote(num_cpus=1)(_forecast_part)


def submit_chunk(
    task: ForecastTask, settings: PipelineSettings, number: int, chunk: ForecastChunk
) -> ObjectRef[pd.DataFrame]:
    """Start chunk ``number``'s task, ``forecast:<id>:<number>`` (one CPU)."""
    ref: ObjectRef[pd.DataFrame] = _remote_forecast_part.options(
        name=f"forecast:{task.forecast_id}:{number}"
    ).remote(task, settings, chunk)
    return ref


def forecast_chunks(
    task: ForecastTask,
    settings: PipelineSettings,
    plan: list[ForecastChunk],
    progress: Callable[[float], None] | None,
    in_flight: int = CHUNKS_IN_FLIGHT,
) -> list[pd.DataFrame]:
    """The forecast rows of every chunk of ``plan``, in its order, from at most
    ``in_flight`` tasks at a time, telling ``progress`` the share done as each ends; on a
    failure (or the coordinator's cancel) the running ones are cancelled."""
    waiting: Iterator[tuple[int, ForecastChunk]] = iter(enumerate(plan))
    running: dict[ObjectRef[pd.DataFrame], int] = {}
    parts: dict[int, pd.DataFrame] = {}
    try:
        while len(parts) < len(plan):
            while len(running) < max(1, in_flight) and (item := next(waiting, None)):
                number, chunk = item
                running[submit_chunk(task, settings, number, chunk)] = number
            [ready], _ = ray.wait(list(running), num_returns=1)
            parts[running.pop(ready)] = ray.get(ready)
            if progress is not None:
                progress(len(parts) / len(plan))
    except BaseException:
        for ref in running:
            ray.cancel(ref)
        raise
    return [parts[number] for number in range(len(plan))]


def run_forecast(
    task: ForecastTask,
    settings: PipelineSettings,
    progress: Callable[[float], None] | None,
    in_flight: int = CHUNKS_IN_FLIGHT,
) -> ForecastOutcome:
    """The coordinator of a batch forecast: plan it from the set's key columns, forecast
    its chunks as one-CPU tasks ``forecast:<id>:<n>`` (``forecast_chunks``), write one
    Parquet file of their rows.

    Raises:
        InvalidRequest: the model or the set changed since the request was accepted.
    """
    store = FeatureStore(settings.features_root, task.tenant_id)
    metadata = load_metadata(Location(task.model_uri))
    plan = plan_forecast(store, metadata, task.feature_set, task.horizon, task.series)
    parts = forecast_chunks(task, settings, plan, progress, in_flight)
    table: pd.DataFrame = pd.concat(parts, ignore_index=True)
    table = table.sort_values(["series", "timestamp"], kind="stable", na_position="first")
    location = forecast_location(settings.artifacts_root, task.tenant_id, task.forecast_id)
    location.write_parquet(pa.Table.from_pandas(table, preserve_index=False))
    return ForecastOutcome(rows=len(table), artifact_uri=str(location))


_remote_forecast = ray.remote(num_cpus=0, max_retries=0)(run_forecast)


def launch_forecast(
    task: ForecastTask, settings: PipelineSettings, progress: Callable[[float], None] | None
) -> ObjectRef[ForecastOutcome]:
    """Start a batch forecast's coordinator (0 CPUs: it only waits on its parts)."""
    ref: ObjectRef[ForecastOutcome] = _remote_forecast.options(
        name=f"forecast:{task.forecast_id}"
    ).remote(task, settings, progress)
    return ref
