"""Detection over a year of 5-minute rows of 100 series through the running service,
beside a batch forecast of the same set, on the local 2-CPU Ray.

Synthetic 5-minute meters (``--series``, ``--days``; ``bench.batch_forecast.meters``) are
stored as one feature set; an anomaly model (horizon 1, 100 rounds) is trained through
the API on their first four weeks (not timed). Then, each timed from its ``POST`` until
its ``GET`` says completed: a batch forecast of every series (what a forecast of the set
costs: each series' next step, from the history it needs) and a detection of every row
of the set (features, forecasts, calibrated scores and events of all of them). Beside
them, in this process: the features and the model's forecasts of every row, no scores
(what scoring every row costs before any detection).
Usage: ``python -m bench.detection_cost [--series 100] [--days 365]``.
Goal (issue 38): the detection within 2x the batch forecast.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

from actors.settings import OrchestratorSettings
from bench.batch_forecast import completed_job, meters, wait
from db.settings import DatabaseSettings
from pipeline.features.build import build_features
from pipeline.models.artifacts import load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

API_PORT = 8794
FEATURE_SET = "bench_sensors"
TRAINING_DAYS = 28
GOAL_RATIO = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-detection-"))
    pipeline = PipelineSettings(data_dir=data_dir)
    url = DatabaseSettings(data_dir=data_dir).url
    try:
        asyncio.run(prepare_storage(url, pipeline))
        frame = meters(args.series, args.days, freq="5min")
        rows = len(frame)
        store = FeatureStore(pipeline.features_root)
        store.put(
            FEATURE_SET,
            frame,
            timestamp_column="timestamp",
            target_column="load_kw",
            series_column="meter",
        )
        del frame
        config = ServiceConfig(
            database_url=url,
            pipeline=pipeline,
            orchestrator=OrchestratorSettings(),
            api=ApiSettings(port=API_PORT),
        )
        connect(None, num_cpus=2)
        running = start(config)
        try:
            with httpx.Client(base_url=running.api_url, timeout=300) as client:
                model = train(client)
                forecast = timed(
                    client,
                    model["model_id"],
                    "forecasts",
                    {"feature_set": FEATURE_SET, "horizon": 1},
                )
                detection = timed(client, model["model_id"], "detections", {})
        finally:
            stop(running)
        in_process = forecast_every_row(store, model["artifact_uri"])
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    ratio = detection / forecast
    print(
        f"{args.series} series x {args.days} days of 5-minute rows ({rows:,} rows), 2 CPUs:\n"
        f"  batch forecast (each series' next step): {forecast:.1f} s\n"
        f"  detection of every row: {detection:.1f} s = {ratio:.2f}x the forecast "
        f"(goal <= {GOAL_RATIO:.0f}x: {'met' if ratio <= GOAL_RATIO else 'missed'})\n"
        f"  in process, features and forecasts of every row, one task: {in_process:.1f} s "
        f"(detection {detection / in_process:.2f}x)"
    )


def train(client: httpx.Client) -> dict[str, str]:
    """An anomaly model of the set's first four weeks (untimed); its registry row."""
    first = pd.Timestamp("2026-01-01", tz="UTC")
    job = {
        "tenant_id": "bench",
        "model_type": "anomaly",
        "model_name": "sensors",
        "config": {
            "feature_set": FEATURE_SET,
            "target_variable": "load_kw",
            "horizon": 1,
            "end_date": (first + pd.Timedelta(days=TRAINING_DAYS)).isoformat(),
            "hyperparameters": {"n_estimators": 100, "learning_rate": 0.1},
            "quantiles": [],
            "n_workers": 2,
        },
    }
    finished = completed_job(client, job)
    model: dict[str, str] = client.get(f"/ai/models/{finished['model_id']}").json()
    return model


def timed(client: httpx.Client, model_id: str, kind: str, body: dict[str, object]) -> float:
    """Seconds from the POST of a forecast or detection until it completed."""
    started = time.perf_counter()
    created = client.post(f"/ai/models/{model_id}/{kind}", json=body).raise_for_status().json()
    key = "forecast" if kind == "forecasts" else "detection"
    path = f"/ai/models/{kind}/{created[f'{key}_id']}"
    page = wait(client, path, lambda p: p[key]["status"] in ("completed", "failed"), 3600)
    seconds = time.perf_counter() - started
    if page[key]["status"] != "completed":
        raise SystemExit(f"{kind} failed: {page[key]['error']}")
    return seconds


def forecast_every_row(store: FeatureStore, artifact_uri: str) -> float:
    """Seconds to read the set, build every row's features and forecast them."""
    artifact = load_artifact(Location(artifact_uri))
    started = time.perf_counter()
    frame = store.load(FEATURE_SET)
    matrix = build_features(frame, artifact.feature_spec, columns=artifact.metadata["features"])
    artifact.predict(matrix.features.to_numpy())
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
