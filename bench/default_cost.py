"""What the default job costs beside mlforecast with conformal intervals, on the same rows.

For each synthetic multi-meter set (``bench/scale_data.py``; 350k and 1.75M rows by
default), each in a fresh process, one thread each (LightGBM's and mlforecast's):

- ``default``: the service's job with nothing set but the set, the target and the horizon
  (``run_in_process``: load, features, preprocess, train, evaluate, register): the default
  plan, its members, its intervals;
- ``service``: the same job submitted over HTTP to the service running on the same data
  (local Ray with two CPUs, SQLite; the job holds one), ``--repeats`` jobs one after
  another after a warm-up job: seconds from the job's creation to its completion, and its
  stages' own seconds from its log; the difference is what the service adds;
- ``mlforecast``: Nixtla mlforecast's ``fit`` with ``LGBMRegressor(n_estimators=500)``, the
  job's lags and calendar features, and its conformal ``PredictionIntervals(n_windows=2,
  h=24)``, which fits a second model for the conformity scores.

Each pair runs ``--repeats`` times, one after the other (these machines are noisy:
mlforecast at 350k rows took 14.0 s in one run and 12.0 s in the next). It prints each
run's wall time and the ratios of the median times to mlforecast's (goals: the service's
job <= 1.5, the in-process runner <= 1.0).

    .venv-bench/bin/python -m bench.default_cost [--sizes 350k,1.75M] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.scale import _is_weekend, measured, parse_size, role_import
from bench.scale_data import meters_file

THREADS = 1
MLFORECAST_ROUNDS = 500
SERVICE_PORT = 8767
SERVICE_CPUS = 2


def role_default(data_dir: Path) -> dict[str, Any]:
    from domain.jobs import ModelType
    from pipeline.config import TrainingConfig
    from pipeline.context import JobContext
    from pipeline.graph.runner import run_in_process
    from pipeline.settings import PipelineSettings

    config = TrainingConfig(feature_set="meters", target_variable="load_kw", horizon=24)
    context = JobContext(str(uuid.uuid4()), "bench", ModelType.FORECAST, "cost", config)
    started = time.perf_counter()
    saved, reports = run_in_process(context, PipelineSettings(data_dir=data_dir), THREADS)
    return {
        "seconds": time.perf_counter() - started,
        "mae": round(saved.metrics["mae"], 4),
        "coverage_80": round(saved.metrics["coverage_80"], 3),
        "stages": {str(r.stage): round(r.seconds, 1) for r in reports},
    }


def role_service(data_dir: Path, jobs: int) -> dict[str, Any]:
    """``jobs`` default jobs through a service started on ``data_dir``, after one that
    warms its workers: each one's seconds, and its stages' seconds from its log."""
    import asyncio

    import httpx

    from actors.settings import OrchestratorSettings
    from bench.service_client import Service
    from db.settings import DatabaseSettings
    from pipeline.settings import PipelineSettings
    from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
    from serve_app.settings import ApiSettings

    pipeline = PipelineSettings(data_dir=data_dir)
    database_url = DatabaseSettings(data_dir=data_dir).url
    asyncio.run(prepare_storage(database_url, pipeline))
    api = ApiSettings(port=SERVICE_PORT)
    connect(None, num_cpus=SERVICE_CPUS)
    running = start(ServiceConfig(database_url, pipeline, OrchestratorSettings(), api))
    config = {"feature_set": "meters", "target_variable": "load_kw", "horizon": 24}

    async def submit_all() -> list[dict[str, Any]]:
        runs = []
        async with httpx.AsyncClient(base_url=running.api_url, timeout=60) as client:
            service = Service(client)
            for number in range(jobs + 1):
                job, seconds = await service.run(config, f"cost-{number}")
                lines = await service.log_lines(job["job_id"], "finished in")
                stages = {line.split()[0]: float(line.split()[-1].rstrip("s")) for line in lines}
                runs.append({"seconds": seconds, "mae": job["metrics"]["mae"], "stages": stages})
        return runs[1:]  # the first warmed the workers

    try:
        return {"jobs": asyncio.run(submit_all())}
    finally:
        stop(running)


def role_mlforecast(file: Path) -> dict[str, Any]:
    import lightgbm as lgb
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd
    from mlforecast.utils import PredictionIntervals

    started = time.perf_counter()
    data = pd.read_parquet(file).rename(
        columns={"meter": "unique_id", "timestamp": "ds", "load_kw": "y"}
    )
    data["ds"] = data["ds"].dt.tz_localize(None)
    data["series_id"] = data["unique_id"].astype("category")
    windows = [RollingMean(24, min_samples=12), RollingStd(24, min_samples=12)]
    windows += [RollingMean(168, min_samples=84), RollingStd(168, min_samples=84)]
    model = lgb.LGBMRegressor(n_estimators=MLFORECAST_ROUNDS, num_threads=THREADS, verbosity=-1)
    forecaster = MLForecast(
        models={"lgb": model},
        freq="h",
        lags=[24, 25, 26, 48, 168],
        lag_transforms={24: windows},
        date_features=["hour", "dayofweek", "month", "dayofyear", _is_weekend],
        num_threads=THREADS,
    )
    forecaster.fit(
        data,
        static_features=["series_id"],
        prediction_intervals=PredictionIntervals(n_windows=2, h=24),
    )
    return {"seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="350k,1.75M")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench-scale")
    parser.add_argument("--role", choices=["import", "default", "service", "mlforecast"])
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "import":
        print(json.dumps(role_import(args.data_dir, args.file)))
        return
    if args.role == "default":
        print(json.dumps(role_default(args.data_dir)))
        return
    if args.role == "mlforecast":
        print(json.dumps(role_mlforecast(args.file)))
        return
    if args.role == "service":
        print(json.dumps(role_service(args.data_dir, args.repeats)))
        return

    me = [sys.executable, "-m", "bench.default_cost"]
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        file = meters_file(size, args.data)
        data_dir = Path(tempfile.mkdtemp(prefix="cost-", dir=args.data))
        imported = measured(
            "import",
            size,
            [*me, "--role", "import", "--file", str(file), "--data-dir", str(data_dir)],
        )
        rows = int(imported.detail["rows"])
        times: dict[str, list[float]] = {"default": [], "mlforecast": []}
        for _ in range(args.repeats):
            default = measured(
                "default", rows, [*me, "--role", "default", "--data-dir", str(data_dir)]
            )
            reference = measured(
                "mlforecast", rows, [*me, "--role", "mlforecast", "--file", str(file)]
            )
            for run in (default, reference):
                times[run.role].append(run.seconds)
                print(
                    f"{rows:>10,} rows  {run.role:<10} {run.seconds:7.1f} s  "
                    f"{json.dumps(run.detail)}",
                    flush=True,
                )
        service = measured(
            "service",
            rows,
            [*me, "--role", "service", "--data-dir", str(data_dir), "--repeats", str(args.repeats)],
        )
        times["service"] = [job["seconds"] for job in service.detail["jobs"]]
        for job in service.detail["jobs"]:
            staged = sum(job["stages"].values())
            print(
                f"{rows:>10,} rows  service    {job['seconds']:7.1f} s  stages {staged:.1f} s  "
                f"{json.dumps(job)}",
                flush=True,
            )
        medians = {role: statistics.median(seconds) for role, seconds in times.items()}
        baseline = medians["mlforecast"]
        print(
            f"{rows:>10,} rows  medians of {args.repeats}: service {medians['service']:.1f} s, "
            f"in process {medians['default']:.1f} s, mlforecast {baseline:.1f} s; "
            f"/ mlforecast with intervals: service {medians['service'] / baseline:.2f} "
            f"(goal <= 1.5), in process {medians['default'] / baseline:.2f} (goal <= 1.0)",
            flush=True,
        )


if __name__ == "__main__":
    main()
