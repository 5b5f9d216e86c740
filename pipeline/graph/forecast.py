"""Batch forecasts: a coordinator task and one task per chunk of series, in the CPUs the
orchestrator reserved for the forecast.

The coordinator only plans (from the set's key columns) and gathers the chunks' forecast
rows; each chunk task reads its own series' window from the feature store, so the
coordinator holds no history (and runs in the reservation, off the head node). One chunk
task runs per reserved CPU, the next as one ends (``fan_out``): chunk tasks never wait in
Ray's queue.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

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
from pipeline.graph.fanout import Starter, fan_out
from pipeline.models.artifacts import ModelArtifact, load_artifact, load_metadata
from pipeline.placement import Placement
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore


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


_remote_forecast_part = ray.remote(_forecast_part)


def submit_chunk(
    task: ForecastTask,
    settings: PipelineSettings,
    number: int,
    chunk: ForecastChunk,
    options: dict[str, Any],
) -> ObjectRef[pd.DataFrame]:
    """Start chunk ``number``'s task, ``forecast:<id>:<number>``, with the Ray options
    of the reserved CPU it runs in."""
    ref: ObjectRef[pd.DataFrame] = _remote_forecast_part.options(
        name=f"forecast:{task.forecast_id}:{number}", **options
    ).remote(task, settings, chunk)
    return ref


def forecast_chunks(
    task: ForecastTask,
    settings: PipelineSettings,
    plan: list[ForecastChunk],
    progress: Callable[[float], None] | None,
    placement: Placement,
) -> list[pd.DataFrame]:
    """The forecast rows of every chunk of ``plan``, in its order, one task per CPU of
    ``placement`` at a time, telling ``progress`` the share done as each ends; on a
    failure the running ones are cancelled."""

    def starter(number: int, chunk: ForecastChunk) -> Starter[pd.DataFrame]:
        return lambda options: submit_chunk(task, settings, number, chunk, options)

    starters = [starter(number, chunk) for number, chunk in enumerate(plan)]
    return fan_out(starters, placement.workers(), "forecast", progress=progress)


def run_forecast(
    task: ForecastTask,
    settings: PipelineSettings,
    progress: Callable[[float], None] | None,
    placement: Placement,
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
    parts = forecast_chunks(task, settings, plan, progress, placement)
    table: pd.DataFrame = pd.concat(parts, ignore_index=True)
    table = table.sort_values(["series", "timestamp"], kind="stable", na_position="first")
    location = forecast_location(settings.artifacts_root, task.tenant_id, task.forecast_id)
    location.write_parquet(pa.Table.from_pandas(table, preserve_index=False))
    return ForecastOutcome(rows=len(table), artifact_uri=str(location))


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
