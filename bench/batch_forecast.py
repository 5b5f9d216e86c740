"""A batch forecast of 2,000 series through the running service, on the local 2-CPU Ray.

Synthetic hourly meters (``--series``, ``--days`` of history each, a temperature
covariate) are stored as one feature set; a model is trained on them through the API
(not timed); then the forecast is timed from ``POST /ai/models/{id}/forecasts`` until
``GET /ai/models/forecasts/{id}`` says completed (the request's check, the coordinator,
the chunk tasks and the Parquet write), and the CSV download after it.
Usage: ``python -m bench.batch_forecast [--series 2000] [--days 14] [--horizon 24]``.
Goal: at most 30 s for 2,000 series.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from actors.settings import OrchestratorSettings
from db.settings import DatabaseSettings
from pipeline.settings import PipelineSettings
from pipeline.store.feature_store import FeatureStore
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

API_PORT = 8793
FEATURE_SET = "bench_meters"
GOAL_SECONDS = 30.0


def meters(series: int, days: int, seed: int = 7, freq: str = "h") -> pd.DataFrame:
    """Load of ``series`` meters every ``freq`` (hourly): a level each, a daily and weekly
    shape, a temperature effect and noise."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(
        "2026-01-01",
        periods=days * (pd.Timedelta(days=1) // pd.Timedelta(freq)),
        freq=freq,
        tz="UTC",
    )
    steps = len(stamps)
    hour = np.asarray(stamps.hour + stamps.minute / 60)
    weekday = np.asarray(stamps.dayofweek)
    level = rng.uniform(50, 500, series)[:, None]
    daily = 1 + 0.3 * np.sin(2 * np.pi * (hour - 7) / 24)[None, :]
    weekly = np.where(weekday >= 5, 0.8, 1.0)[None, :]
    temperature = (
        8 + 5 * np.sin(2 * np.pi * (hour - 14) / 24)[None, :] + rng.normal(0, 1.5, (series, steps))
    )
    load = level * daily * weekly + 2 * (18 - temperature) + rng.normal(0, 5, (series, steps))
    return pd.DataFrame(
        {
            "meter": np.repeat([f"m{i:05d}" for i in range(series)], steps),
            "timestamp": np.tile(stamps, series),
            "load_kw": load.ravel().round(3),
            "temperature_c": temperature.ravel().round(2),
        }
    )


def wait(client: httpx.Client, path: str, done: Any, timeout: float = 1800) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(path).raise_for_status().json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {body}")
        time.sleep(0.1)


def completed_job(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    """Submit a training job and wait for it; exits unless it completed."""
    job_id = client.post("/ai/training/jobs/start", json=job).raise_for_status().json()["job_id"]
    finished = wait(
        client,
        f"/ai/training/jobs/{job_id}",
        lambda j: j["status"] in ("completed", "failed", "cancelled"),
    )
    if finished["status"] != "completed":
        raise SystemExit(f"training failed: {finished.get('error_message')}")
    return finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--horizon", type=int, default=24)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-forecast-"))
    pipeline = PipelineSettings(data_dir=data_dir)
    url = DatabaseSettings(data_dir=data_dir).url
    try:
        asyncio.run(prepare_storage(url, pipeline))
        frame = meters(args.series, args.days)
        FeatureStore(pipeline.features_root).put(
            FEATURE_SET,
            frame,
            timestamp_column="timestamp",
            target_column="load_kw",
            series_column="meter",
        )
        config = ServiceConfig(
            database_url=url,
            pipeline=pipeline,
            orchestrator=OrchestratorSettings(),
            api=ApiSettings(port=API_PORT),
        )
        connect(None, num_cpus=2)
        running = start(config)
        try:
            with httpx.Client(base_url=running.api_url, timeout=120) as client:
                measured = run(client, args.horizon)
        finally:
            stop(running)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    seconds, accepted, rows, csv_seconds = measured
    print(
        f"{args.series} series x {args.days} days hourly ({len(frame)} rows), horizon "
        f"{args.horizon}, 2 CPUs: {rows} forecast rows in {seconds:.1f} s "
        f"(POST answered in {accepted:.1f} s; goal <= {GOAL_SECONDS:.0f} s: "
        f"{'met' if seconds <= GOAL_SECONDS else 'missed'}); CSV download {csv_seconds:.1f} s"
    )


def run(client: httpx.Client, horizon: int) -> tuple[float, float, int, float]:
    """Train (untimed), then time one forecast and its CSV."""
    job = {
        "tenant_id": "bench",
        "model_type": "forecast",
        "model_name": "meters",
        "config": {
            "feature_set": FEATURE_SET,
            "target_variable": "load_kw",
            "horizon": horizon,
            "hyperparameters": {"n_estimators": 100, "learning_rate": 0.1},
            "n_workers": 2,
        },
    }
    finished = completed_job(client, job)

    started = time.perf_counter()
    body = {"feature_set": FEATURE_SET, "horizon": horizon}
    response = client.post(f"/ai/models/{finished['model_id']}/forecasts", json=body)
    forecast = response.raise_for_status().json()
    accepted = time.perf_counter() - started
    path = f"/ai/models/forecasts/{forecast['forecast_id']}"
    page = wait(client, path, lambda p: p["forecast"]["status"] in ("completed", "failed"))
    seconds = time.perf_counter() - started
    if page["forecast"]["status"] != "completed":
        raise SystemExit(f"forecast failed: {page['forecast']['error']}")

    started = time.perf_counter()
    csv = client.get(path, headers={"Accept": "text/csv"}).raise_for_status()
    csv_seconds = time.perf_counter() - started
    assert csv.text.count("\n") == page["forecast"]["rows"] + 1
    return seconds, accepted, int(page["forecast"]["rows"]), csv_seconds


if __name__ == "__main__":
    main()
