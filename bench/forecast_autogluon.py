"""AutoGluon-TimeSeries on a benchmark set: the higher anchor beside mlforecast.

No pretrained weights: its tabular models (LightGBM on lags, one for the whole horizon
at once and one recursive), ETS and Theta, and the weighted ensemble of them, fitted within the
service default job's seconds. AutoGluon pins mlforecast < 0.15, so it runs in a
virtualenv of its own (.venv-autogluon, ``make bench-forecast`` builds it) through
bench/autogluon_worker.py, with the data passed through files.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.forecast_data import QUANTILES, BenchSet, Scores, scores
from bench.forecast_mlforecast import _long_format

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv-autogluon" / "bin" / "python"
WORKER = ROOT / "bench" / "autogluon_worker.py"
#: The models AutoGluon fits (names as its ``hyperparameters`` takes them), each with its
#: defaults: DirectTabular and RecursiveTabular (LightGBM on lags and date features, one
#: model for the whole horizon at once and one recursive), ETS and Theta (statsforecast's);
#: no pretrained model (Chronos and the like) is fitted or downloaded.
HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "DirectTabular": {},
    "RecursiveTabular": {},
    "ETS": {},
    "Theta": {},
}
EVAL_METRIC = "WQL"
RANDOM_SEED = 123
#: Rows of history per predict call: the origins' histories are items of one call.
CHUNK_ROWS = 2_000_000
WORKER_TIMEOUT = 3600


def autogluon_scores(
    bench_set: BenchSet, test: pd.DataFrame, time_limit: float
) -> tuple[Scores, list[str]]:
    """Fitted once, within ``time_limit`` seconds, on the history before the test part;
    then forecasts of the test part from origins every horizon steps ending with the set,
    each seeing the actuals up to itself, as mlforecast's windows. Scored on exactly the
    service's test (series, timestamp) pairs; ``Scores.seconds`` is the fit's."""
    h, step = bench_set.horizon, bench_set.step
    frame = _long_format(bench_set)
    last = frame["ds"].max()
    windows = math.ceil((round((last - test["ds"].min()) / step) + 1) / h)
    first_cutoff = last - step * (windows * h)
    origins = [first_cutoff + step * (window * h) for window in range(windows)]
    frame = frame.rename(columns={"unique_id": "item_id", "ds": "timestamp", "y": "target"})
    job = {
        "prediction_length": h,
        "freq": _freq(frame, step),
        "known_covariates": bench_set.covariates,
        "quantile_levels": list(QUANTILES),
        "eval_metric": EVAL_METRIC,
        "hyperparameters": HYPERPARAMETERS,
        "enable_ensemble": True,
        "time_limit": time_limit,
        "random_seed": RANDOM_SEED,
        "origins": [o.isoformat() for o in origins],
        "chunk_rows": CHUNK_ROWS,
    }
    with tempfile.TemporaryDirectory(prefix="bench-autogluon-") as name:
        directory = Path(name)
        frame.to_parquet(directory / "frame.parquet")
        (directory / "job.json").write_text(json.dumps(job))
        result, forecasts = _run_worker(directory, bench_set.name)
    forecasts = forecasts.rename(columns={"item_id": "unique_id", "timestamp": "ds"})
    keys = ["unique_id", "ds"]
    scored = test.merge(forecasts[[*keys, "mean", *(str(q) for q in QUANTILES)]], on=keys)
    if len(scored) != len(test) or scored["mean"].isna().any():
        raise RuntimeError(f"AutoGluon missed test rows of {bench_set.name}")
    bounds = scored[[str(q) for q in QUANTILES]].to_numpy()
    outcome = scores(scored["actual"].to_numpy(), scored["mean"].to_numpy(), bounds)
    outcome.seconds = result["fit_seconds"]
    weights = ", ".join(
        f"{model} {weight:.2f}" for model, weight in result["model_weights"].items() if weight
    )
    note = (
        f"AutoGluon {result['version']}: fit {result['fit_seconds']:.1f} s of {time_limit:.1f}, "
        f"{result['model_best']} ({weights or 'no ensemble'}), {windows} origins forecast "
        f"in {result['predict_seconds']:.1f} s"
    )
    return outcome, [note]


def _freq(frame: pd.DataFrame, step: pd.Timedelta) -> str:
    """The grid's pandas frequency ("W-SUN" rather than "7D", from which AutoGluon infers
    the season), or the step's where pandas infers none."""
    stamps = frame.loc[frame["item_id"] == frame["item_id"].iloc[0], "timestamp"]
    inferred = pd.infer_freq(pd.DatetimeIndex(stamps)) if len(stamps) >= 3 else None
    return inferred or pd.tseries.frequencies.to_offset(step).freqstr


def _run_worker(directory: Path, name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    if not PYTHON.exists():
        raise RuntimeError(f"{PYTHON} is missing: make .venv-autogluon/.installed builds it")
    log = directory / "worker.log"
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(
            [str(PYTHON), str(WORKER), str(directory)],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=WORKER_TIMEOUT,
            env={**os.environ, "PYTHONPATH": ""},
            check=False,
        )
    if done.returncode:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"AutoGluon failed on {name} (exit {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads((directory / "result.json").read_text())
    result["worker_seconds"] = time.perf_counter() - started
    return result, pd.read_parquet(directory / "forecasts.parquet")
