"""What the default job costs beside mlforecast with conformal intervals, on the same rows.

For each synthetic multi-meter set (``bench/scale_data.py``; 350k and 1.75M rows by
default), each in a fresh process, one thread each (LightGBM's and mlforecast's):

- ``default``: the service's job with nothing set but the set, the target and the horizon
  (``run_in_process``: load, features, preprocess, train, evaluate, register): the default
  plan, its members, its intervals;
- ``mlforecast``: Nixtla mlforecast's ``fit`` with ``LGBMRegressor(n_estimators=500)``, the
  job's lags and calendar features, and its conformal ``PredictionIntervals(n_windows=2,
  h=24)``, which fits a second model for the conformity scores.

Each pair runs ``--repeats`` times, one after the other (these machines are noisy:
mlforecast at 350k rows took 14.0 s in one run and 12.0 s in the next). It prints each
run's wall time and the ratio of the median times default / mlforecast (goal <= 1.5).

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
    parser.add_argument("--role", choices=["import", "default", "mlforecast"])
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
        medians = {role: statistics.median(seconds) for role, seconds in times.items()}
        print(
            f"{rows:>10,} rows  median of {args.repeats}: default {medians['default']:.1f} s, "
            f"mlforecast {medians['mlforecast']:.1f} s; default / mlforecast with intervals: "
            f"{medians['default'] / medians['mlforecast']:.2f} (goal <= 1.5)",
            flush=True,
        )


if __name__ == "__main__":
    main()
