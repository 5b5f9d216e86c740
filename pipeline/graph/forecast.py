"""Batch forecasts: a coordinator task and one task per chunk of series."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import ray
from ray import ObjectRef

from pipeline.forecasting.batch import (
    ForecastOutcome,
    ForecastTask,
    SeriesHistory,
    forecast_chunk,
    forecast_location,
    load_history,
)
from pipeline.graph.gather import gather
from pipeline.models.artifacts import ModelArtifact, load_artifact, load_metadata
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore


@functools.lru_cache(maxsize=4)
def _artifact(model_uri: str) -> ModelArtifact:
    """A worker's loaded models (artifacts never change), so its next chunk skips the load."""
    return load_artifact(Location(model_uri))


def _forecast_part(model_uri: str, history: SeriesHistory, horizon: int) -> pd.DataFrame:
    return forecast_chunk(_artifact(model_uri), history, horizon)


_remote_forecast_part = ray.remote(num_cpus=1)(_forecast_part)


def run_forecast(
    task: ForecastTask, settings: PipelineSettings, progress: Callable[[float], None] | None
) -> ForecastOutcome:
    """The coordinator of a batch forecast: read the history once, forecast it as one-CPU
    tasks ``forecast:<id>:<n>`` of ``CHUNK_SERIES`` series each, write one Parquet file.

    Raises:
        InvalidRequest: the model or the set changed since the request was accepted.
    """
    store = FeatureStore(settings.features_root, task.tenant_id)
    metadata = load_metadata(Location(task.model_uri))
    history = load_history(store, metadata, task.feature_set, task.horizon, task.series)
    refs = [
        _remote_forecast_part.options(name=f"forecast:{task.forecast_id}:{n}").remote(
            task.model_uri, part, task.horizon
        )
        for n, part in enumerate(history.split())
    ]
    parts = gather(refs, "forecast", progress=progress)
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
