"""How one job's time and memory grow with its rows, beside mlforecast on the same rows.

For each synthetic multi-meter set (``bench/scale_data.py``; 1M, 4M and 16M rows by
default) it runs, each in a fresh process so that process's peak RSS is its own:

- ``import``: the feature store's streamed import of the Parquet file into a new version;
- ``train``: the service's job in one process (``run_in_process``: load, features,
  preprocess, train, evaluate, register) with ``--threads`` LightGBM threads;
- ``mlforecast``: Nixtla mlforecast's ``fit`` with a LightGBM of the same parameters and
  threads on the job's own 16 features (it needs ``.venv-bench``, where mlforecast is
  installed);
- ``distributed`` (``--distributed-from`` rows up): the same job through ``launch`` on a
  local Ray of ``--threads`` CPUs with ``distributed.workers=2``; its peak RSS is the
  largest of any of its processes (the driver and every Ray worker's ``VmHWM``, sampled
  twice a second until each exits).

It prints each run's wall time, rows/s and peak RSS, the ratio service/mlforecast, and the
growth exponent k of time ∝ rows^k (a least-squares fit over the sizes).

    .venv-bench/bin/python -m bench.scale [--sizes 1M,4M,16M] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.scale_data import meters_file
from pipeline.hyperparameters import DEFAULT_HYPERPARAMETERS

#: The job the service runs: one L2 booster of a fixed number of rounds (no early stopping,
#: no quantile boosters), so both tools do the same amount of boosting.
ROUNDS = 200
PARAMS: dict[str, Any] = {**DEFAULT_HYPERPARAMETERS, "n_estimators": ROUNDS}


@dataclass(frozen=True)
class Run:
    role: str
    rows: int
    seconds: float
    peak_rss_mb: float
    detail: dict[str, Any]


def measured(role: str, rows: int, argv: list[str]) -> Run:
    """Run one role in a child process: its wall time and peak RSS (from ``wait4``)."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{role} at {rows} rows exited with {child.returncode}")
    detail = json.loads(output.strip().splitlines()[-1])
    return Run(role, rows, detail.pop("seconds", seconds), usage.ru_maxrss / 1024, detail)


def role_import(data_dir: Path, file: Path) -> dict[str, Any]:
    from pipeline.settings import PipelineSettings
    from pipeline.store.feature_store import FeatureStore

    store = FeatureStore(PipelineSettings(data_dir=data_dir).features_root)
    started = time.perf_counter()
    schema = store.import_file(
        "meters",
        file,
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    return {"seconds": time.perf_counter() - started, "rows": schema.rows}


def _context(**extra: Any) -> Any:
    from domain.jobs import ModelType
    from pipeline.config import TrainingConfig
    from pipeline.context import JobContext

    config = TrainingConfig(
        feature_set="meters",
        target_variable="load_kw",
        horizon=24,
        hyperparameters={**PARAMS, "objective": "regression"},
        early_stopping_rounds=0,
        quantiles=[],
        **extra,
    )
    return JobContext(str(uuid.uuid4()), "bench", ModelType.FORECAST, "scale", config)


def role_train(data_dir: Path, threads: int) -> dict[str, Any]:
    from pipeline.graph.runner import run_in_process
    from pipeline.settings import PipelineSettings

    context = _context()
    started = time.perf_counter()
    saved, reports = run_in_process(context, PipelineSettings(data_dir=data_dir), threads)
    return {
        "seconds": time.perf_counter() - started,
        "mae": saved.metrics["mae"],
        "stages": {str(r.stage): round(r.seconds, 1) for r in reports},
    }


def role_distributed(data_dir: Path, threads: int) -> dict[str, Any]:
    import threading

    import ray

    from pipeline.graph.launch import launch
    from pipeline.settings import PipelineSettings

    ray.init(address="local", num_cpus=threads, include_dashboard=False, log_to_driver=False)
    peaks: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid, name in _session_processes():
                try:
                    peak = _peak_rss_mb(pid)
                except OSError:  # it has just exited
                    continue
                if peak > peaks.get(pid, ("", 0.0))[1]:
                    peaks[pid] = (name, peak)
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    run = launch(_context(distributed={"workers": 2}), PipelineSettings(data_dir=data_dir))
    reports = ray.get(run.reports)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    ray.shutdown()
    largest = sorted(peaks.values(), key=lambda item: -item[1])[:4]
    return {
        "seconds": seconds,
        "largest_mb": largest[0][1],
        "largest": [f"{name} {mb:.0f} MB" for name, mb in largest],
        "stages": {str(r.stage): round(r.seconds, 1) for r in reports},
    }


def _session_processes() -> list[tuple[int, str]]:
    """This process and Ray's workers (``ray::...``): the benchmark's machine runs no other
    Ray."""
    found = [(os.getpid(), "driver")]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("ray::"):
            found.append((int(entry), name))
    return found


def _peak_rss_mb(pid: int) -> float:
    """A process's peak resident set (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def role_mlforecast(file: Path, threads: int) -> dict[str, Any]:
    import lightgbm as lgb
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd

    started = time.perf_counter()
    data = pd.read_parquet(file).rename(
        columns={"meter": "unique_id", "timestamp": "ds", "load_kw": "y"}
    )
    data["ds"] = data["ds"].dt.tz_localize(None)
    data["series_id"] = data["unique_id"].astype("category")  # LightGBM: a category, as ours
    windows = [RollingMean(24, min_samples=12), RollingStd(24, min_samples=12)]
    windows += [RollingMean(168, min_samples=84), RollingStd(168, min_samples=84)]
    forecaster = MLForecast(
        models={"lgb": lgb.LGBMRegressor(**PARAMS, num_threads=threads, verbosity=-1)},
        freq="h",
        lags=[24, 25, 26, 48, 168],
        lag_transforms={24: windows},
        date_features=["hour", "dayofweek", "month", "dayofyear", _is_weekend],
        num_threads=threads,
    )
    forecaster.fit(data, static_features=["series_id"])
    return {"seconds": time.perf_counter() - started, "rows": len(data)}


def _is_weekend(dates: Any) -> Any:
    return (dates.dayofweek >= 5).astype(int)


def exponent(runs: list[Run]) -> float:
    """k in seconds ∝ rows^k, least squares over the runs' logs."""
    if len(runs) < 2:
        return math.nan
    x = np.log([r.rows for r in runs])
    y = np.log([r.seconds for r in runs])
    return float(np.polyfit(x, y, 1)[0])


def parse_size(text: str) -> int:
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text.rstrip("kKmM")) * scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,4M,16M")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench-scale")
    parser.add_argument("--skip-mlforecast", action="store_true")
    parser.add_argument(
        "--distributed-from", default="16M", help="also train with distributed.workers=2 here up"
    )
    parser.add_argument(
        "--role", choices=["import", "train", "mlforecast", "distributed"], help=argparse.SUPPRESS
    )
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "import":
        print(json.dumps(role_import(args.data_dir, args.file)))
        return
    if args.role == "train":
        print(json.dumps(role_train(args.data_dir, args.threads)))
        return
    if args.role == "mlforecast":
        print(json.dumps(role_mlforecast(args.file, args.threads)))
        return
    if args.role == "distributed":
        print(json.dumps(role_distributed(args.data_dir, args.threads)))
        return

    me = [sys.executable, "-m", "bench.scale", "--threads", str(args.threads)]
    runs: list[Run] = []
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        file = meters_file(size, args.data)
        data_dir = Path(tempfile.mkdtemp(prefix="scale-", dir=args.data))
        imported = measured(
            "import",
            size,
            [*me, "--role", "import", "--file", str(file), "--data-dir", str(data_dir)],
        )
        rows = int(imported.detail["rows"])
        batch = [
            imported,
            measured("train", rows, [*me, "--role", "train", "--data-dir", str(data_dir)]),
        ]
        if not args.skip_mlforecast:
            batch.append(
                measured("mlforecast", rows, [*me, "--role", "mlforecast", "--file", str(file)])
            )
        if size >= parse_size(args.distributed_from):
            distributed = measured(
                "distributed", rows, [*me, "--role", "distributed", "--data-dir", str(data_dir)]
            )
            largest = float(distributed.detail["largest_mb"])
            batch.append(replace(distributed, peak_rss_mb=largest))
        for run in batch:
            run = Run(run.role, rows, run.seconds, run.peak_rss_mb, run.detail)
            runs.append(run)
            print(
                f"{rows:>11,} rows  {run.role:<10} {run.seconds:8.1f} s  "
                f"{rows / run.seconds:>11,.0f} rows/s  peak RSS {run.peak_rss_mb:8.0f} MB  "
                f"{json.dumps(run.detail)}",
                flush=True,
            )
        by_role = {r.role: r for r in runs if r.rows == rows}
        train = by_role["train"]
        if "mlforecast" in by_role:
            ml = by_role["mlforecast"]
            print(
                f"{rows:>11,} rows  service/mlforecast: time {train.seconds / ml.seconds:.2f}, "
                f"peak RSS {train.peak_rss_mb / ml.peak_rss_mb:.2f}",
                flush=True,
            )
        if "distributed" in by_role:
            spread = by_role["distributed"]
            print(
                f"{rows:>11,} rows  distributed/one process: time "
                f"{spread.seconds / train.seconds:.2f}, largest process's peak RSS "
                f"{spread.peak_rss_mb / train.peak_rss_mb:.2f}",
                flush=True,
            )
    for role in ("import", "train", "mlforecast", "distributed"):
        chosen = [r for r in runs if r.role == role]
        if chosen:
            print(f"growth exponent k ({role}): {exponent(chosen):.3f}")


if __name__ == "__main__":
    main()
