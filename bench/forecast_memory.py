"""A batch forecast coordinator's memory on a large set, against one chunk's data.

``--series`` synthetic hourly meters of ``--days`` each (a temperature covariate) are
written to a Parquet file a block of meters at a time and imported as one feature set
(``FeatureStore.import_file``, in bounded memory); a model is trained in process on the
last ``--train-days`` of every meter (so it knows every series). Then, on a local Ray of
two CPUs, 0-CPU tasks run one after another, each in a fresh worker, measuring its own
peak resident set (``VmHWM``, reset at its start through ``/proc/self/clear_refs``) above
the resident set it started with:

- the coordinator, ``run_forecast``, forecasting every series (its chunk tasks are the
  service's own, one CPU each), twice in the same process: the first run pays for what a
  fresh worker sets up on its first scan, the second shows what a warm worker's run adds;
  then the same in a worker whose Arrow allocations come from jemalloc (pyarrow's default
  pool is mimalloc), for what the allocator keeps;
- a chunk task's work on the plan's first chunk (``read_chunk``, ``forecast_chunk``): the
  rows it reads (``memory_usage(deep=True)``) are "one chunk's data";
- the read the coordinator made before it planned from key columns: every row of every
  series (``FeatureStore.load`` without ``start``), for comparison.

Usage: ``python -m bench.forecast_memory [--series 2000] [--days 730] [--train-days 14]
[--data-dir DIR]``; ``--data-dir`` keeps the set and the model there and reuses them in
the next run. Goal: the coordinator's growth at most twice one chunk's data.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from bench.scale_data import meters_block
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.forecasting.batch import (
    ForecastChunk,
    ForecastTask,
    forecast_chunk,
    plan_forecast,
    read_chunk,
)
from pipeline.graph.forecast import run_forecast
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import load_artifact, load_metadata
from pipeline.placement import Placement
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

FEATURE_SET = "bench_meters"
TRAINING_SET = "bench_meters_recent"
HORIZON = 24
#: Meters generated and written at a time.
BLOCK = 100
MB = 1 << 20
#: A worker whose Arrow allocations come from jemalloc (pyarrow's default is mimalloc).
JEMALLOC = {"env_vars": {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}}


def build(settings: PipelineSettings, series: int, days: int, train_days: int) -> str:
    """Import the set and train the model (unless ``settings``' directories hold them);
    the model's URI."""
    store = FeatureStore(settings.features_root)
    marker = settings.data_dir / "model_uri"
    if store.exists(FEATURE_SET) and marker.exists():
        return marker.read_text()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    staging = settings.data_dir / "meters.parquet"
    recent: list[pd.DataFrame] = []
    writer: pq.ParquetWriter | None = None
    started = time.perf_counter()
    try:
        for first in range(0, series, BLOCK):
            block = meters_block(range(first, min(first + BLOCK, series)), days * 24)
            cut = block["timestamp"].max() - pd.Timedelta(days=train_days)
            recent.append(block[block["timestamp"] > cut])
            table = pa.Table.from_pandas(block, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(staging, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    store.import_file(
        FEATURE_SET,
        staging,
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    staging.unlink()
    store.put(
        TRAINING_SET,
        pd.concat(recent, ignore_index=True),
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    print(f"set imported in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    context = JobContext(
        job_id="bench",
        tenant_id="bench",
        model_type=ModelType.FORECAST,
        model_name="meters",
        config=TrainingConfig(
            feature_set=TRAINING_SET,
            target_variable="load_kw",
            horizon=HORIZON,
            hyperparameters={"n_estimators": 50, "learning_rate": 0.1},
        ),
    )
    saved, _ = run_in_process(context, settings)
    print(f"model trained in {time.perf_counter() - started:.0f} s", flush=True)
    marker.write_text(saved.artifact_uri)
    return saved.artifact_uri


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


@dataclass(frozen=True)
class Measured:
    """A task's peak resident set above the one it started with, its time, and what it
    made."""

    growth_mb: float
    seconds: float
    result: Any


def _measured(work: Any, *args: Any) -> Measured:
    """``work(*args)`` in this process, with its peak RSS growth."""
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    before = _status_kb("VmRSS")
    started = time.perf_counter()
    result = work(*args)
    seconds = time.perf_counter() - started
    return Measured((_status_kb("VmHWM") - before) / 1024, seconds, result)


def _chunk_task(settings: PipelineSettings, model_uri: str, chunk: ForecastChunk) -> int:
    """A chunk task's work (read its window, forecast it); the size of the window's rows."""
    artifact = load_artifact(Location(model_uri))
    history = read_chunk(FeatureStore(settings.features_root), artifact.metadata, chunk)
    forecast_chunk(artifact, history, HORIZON)
    return int(history.data.memory_usage(deep=True).sum())


def _whole_read(settings: PipelineSettings, model_uri: str) -> int:
    """What the coordinator read before: every row of the model's columns."""
    trained = load_metadata(Location(model_uri))["feature_schema"]
    frame = FeatureStore(settings.features_root).load(
        FEATURE_SET, columns=[trained["target_column"], *trained["covariates"]]
    )
    return len(frame.data)


def _coordinator_runs(task: ForecastTask, settings: PipelineSettings) -> list[Measured]:
    """Two forecasts by one coordinator process, each with its own peak (its chunk tasks
    on the cluster's CPUs, without a reservation)."""
    runs = [replace(task, forecast_id=f"{task.forecast_id}-{n}") for n in range(2)]
    return [_measured(run_forecast, run, settings, None, Placement.anywhere()) for run in runs]


# Each measurement in a fresh worker (``max_calls=1``), where nothing was read before.
_remote_measured = ray.remote(num_cpus=0, max_retries=0, max_calls=1)(_measured)
_remote_coordinator = ray.remote(num_cpus=0, max_retries=0, max_calls=1)(_coordinator_runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--train-days", type=int, default=14)
    parser.add_argument("--data-dir", type=Path, help="keep the set and model here, reuse them")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-forecast-memory-"))
    settings = PipelineSettings(data_dir=data_dir)
    try:
        model_uri = build(settings, args.series, args.days, args.train_days)
        store = FeatureStore(settings.features_root)
        metadata = load_metadata(Location(model_uri))
        rows = store.schema(FEATURE_SET).rows
        plan = plan_forecast(store, metadata, FEATURE_SET, HORIZON, None)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            task = ForecastTask("memory", "bench", model_uri, FEATURE_SET, HORIZON, None)
            cold, warm = ray.get(_remote_coordinator.remote(task, settings))
            jemalloc = _remote_coordinator.options(runtime_env=JEMALLOC)
            cold_jemalloc, warm_jemalloc = ray.get(jemalloc.remote(task, settings))
            measure = _remote_measured.remote
            chunk: Measured = ray.get(measure(_chunk_task, settings, model_uri, plan[0]))
            whole: Measured = ray.get(measure(_whole_read, settings, model_uri))
        finally:
            ray.shutdown()
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)

    chunk_mb = chunk.result / MB
    first = plan[0]
    print(
        f"{args.series} series x {args.days} days hourly ({rows:,} rows), a model trained on "
        f"the last {args.train_days} days, horizon {HORIZON}: {len(plan)} chunks of "
        f"{len(first.series)} series, 2 CPUs"
    )
    print(f"  one chunk's data (its window, from {first.start:%Y-%m-%d %H:%M}): {chunk_mb:.1f} MB")
    print(
        f"  a chunk task (read, forecast), fresh worker: peak growth {chunk.growth_mb:.1f} MB "
        f"in {chunk.seconds:.1f} s"
    )
    runs = {
        "first forecast, fresh worker": cold,
        "second, same worker": warm,
        "first forecast, fresh worker, Arrow on jemalloc": cold_jemalloc,
        "second, same worker, Arrow on jemalloc": warm_jemalloc,
    }
    for name, run in runs.items():
        print(
            f"  coordinator, {name}: peak growth {run.growth_mb:.1f} MB = "
            f"{run.growth_mb / chunk_mb:.1f}x one chunk's data (goal <= 2: "
            f"{'met' if run.growth_mb <= 2 * chunk_mb else 'missed'}); "
            f"{run.result.rows:,} rows in {run.seconds:.1f} s"
        )
    print(
        f"  before: every row read whole (the coordinator's read), fresh worker: peak growth "
        f"{whole.growth_mb:.1f} MB = {whole.growth_mb / chunk_mb:.0f}x one chunk's data "
        f"({whole.result:,} rows in {whole.seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
