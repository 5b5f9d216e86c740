"""AutoGluon-TimeSeries on one benchmark set, run by bench/forecast_autogluon.py in
.venv-autogluon (AutoGluon pins mlforecast < 0.15, .venv-bench has >= 1.0).

Usage: ``python bench/autogluon_worker.py DIR``. DIR holds ``frame.parquet`` (item_id,
timestamp, target and known covariates on a regular grid, no missing value) and
``job.json`` (the predictor's settings and the forecast origins); the worker writes
``forecasts.parquet`` (item_id, origin, timestamp, mean and one column per quantile) and
``result.json`` (seconds, the models fitted, the ensemble's weights). It imports nothing of
the project, whose dependencies this virtualenv does not have.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# Nothing is fetched from a model hub: the configuration names no pretrained model, and
# an attempt fails here instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pandas as pd
from autogluon.timeseries import TimeSeriesDataFrame, TimeSeriesPredictor


def contexts(
    frame: pd.DataFrame, origins: list[tuple[int, pd.Timestamp]], horizon: int, known: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Each origin's history (every row up to it) as items of their own, ``series|k``,
    and the known covariates of the ``horizon`` steps after it."""
    histories, futures = [], []
    for number, origin in origins:
        history = frame[frame["timestamp"] <= origin]
        histories.append(history.assign(item_id=history["item_id"] + f"|{number}"))
        if known:
            future = frame[frame["timestamp"] > origin].groupby("item_id", sort=False).head(horizon)
            future = future[["item_id", "timestamp", *known]]
            futures.append(future.assign(item_id=future["item_id"] + f"|{number}"))
    return pd.concat(histories), pd.concat(futures) if futures else None


def main(directory: Path) -> None:
    job: dict[str, Any] = json.loads((directory / "job.json").read_text())
    frame = pd.read_parquet(directory / "frame.parquet")
    known: list[str] = job["known_covariates"]
    horizon: int = job["prediction_length"]
    first = pd.Timestamp(job["origins"][0])
    predictor = TimeSeriesPredictor(
        target="target",
        known_covariates_names=known or None,
        prediction_length=horizon,
        freq=job["freq"],
        eval_metric=job["eval_metric"],
        quantile_levels=job["quantile_levels"],
        path=directory / "predictor",
        verbosity=job.get("verbosity", 1),
    )
    train = TimeSeriesDataFrame.from_data_frame(frame[frame["timestamp"] <= first])
    started = time.perf_counter()
    predictor.fit(
        train,
        hyperparameters=job["hyperparameters"],
        enable_ensemble=job["enable_ensemble"],
        time_limit=job["time_limit"],
        random_seed=job["random_seed"],
    )
    fit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    origins = [(k, pd.Timestamp(o)) for k, o in enumerate(job["origins"])]
    rows_per_context = int((frame["timestamp"] <= origins[-1][1]).sum())
    per_call = max(1, job["chunk_rows"] // max(rows_per_context, 1))
    forecasts = []
    for start in range(0, len(origins), per_call):
        chunk = origins[start : start + per_call]
        history, future = contexts(frame, chunk, horizon, known)
        covariates = None if future is None else TimeSeriesDataFrame.from_data_frame(future)
        prediction = predictor.predict(
            TimeSeriesDataFrame.from_data_frame(history),
            known_covariates=covariates,
            use_cache=False,
        )
        forecasts.append(pd.DataFrame(prediction).reset_index())
    predict_seconds = time.perf_counter() - started

    table = pd.concat(forecasts, ignore_index=True)
    split = table["item_id"].str.rsplit("|", n=1, expand=True)
    table["item_id"] = split[0]
    table["origin"] = split[1].astype(int)
    table.to_parquet(directory / "forecasts.parquet")

    board = predictor.leaderboard()
    best = predictor.model_best
    weights = predictor.info()["model_info"].get(best, {}).get("model_weights", {})
    result = {
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "predict_calls": len(forecasts),
        "model_best": best,
        "models": board["model"].tolist(),
        "score_val": dict(zip(board["model"], board["score_val"].astype(float), strict=True)),
        "model_weights": {str(k): float(v) for k, v in weights.items()},
        "version": _version(),
    }
    (directory / "result.json").write_text(json.dumps(result, indent=2))


def _version() -> str:
    from importlib.metadata import version

    return version("autogluon.timeseries")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
