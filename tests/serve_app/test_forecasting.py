"""Forecast options end to end: backtests, quantiles, holidays, many series, explanations
and live validation scores, through the API on real Ray, LightGBM and both databases."""

from __future__ import annotations

import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.models.artifacts import PREDICTIONS_FILE
from pipeline.store.demo import load_series
from tests.ray_state import task_names
from tests.serve_app.conftest import QUICK, Deployed

#: The default quantiles, for the tests about intervals (``QUICK`` trains none).
P10_P90 = {"quantiles": [0.1, 0.5, 0.9]}


async def completed(deployed: Deployed, config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    job_id = await deployed.submit(config, model_name=f"fc-{uuid.uuid4().hex[:8]}", **fields)
    job = await deployed.wait_finished(job_id, timeout=180)
    assert job["status"] == "completed", job
    return job


async def test_a_backtest_runs_its_windows_as_tasks_and_keeps_the_registered_model(
    deployed: Deployed,
) -> None:
    plain = await completed(deployed, P10_P90)
    job = await completed(deployed, {"backtest": {"windows": 3, "step": 48}, **P10_P90})

    # The registered model is the one trained before the test part: the plain job's.
    assert job["metrics"]["mae"] == plain["metrics"]["mae"]
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    assert model["metrics"]["mae"] == plain["metrics"]["mae"]

    # One experiment per window, with its span and metrics; the job has their mean and spread.
    experiments = await deployed.experiments.of_job(job["job_id"])
    windows = sorted(
        (e for e in experiments if e.name.startswith("backtest window ")), key=lambda e: e.name
    )
    assert [e.name for e in windows] == [f"backtest window {n}" for n in range(3)]
    origins = [pd.Timestamp(e.params["origin"]) for e in windows]
    assert [b - a for a, b in pairwise(origins)] == [pd.Timedelta(hours=48)] * 2
    assert all(e.params["test_rows"] == 24 for e in windows)
    maes = [e.metrics["mae"] for e in windows]
    assert job["metrics"]["backtest_mae_mean"] == pytest.approx(np.mean(maes))
    assert job["metrics"]["backtest_mae_std"] == pytest.approx(np.std(maes, ddof=1))
    assert 0 <= job["metrics"]["backtest_coverage_80_mean"] <= 1
    assert job["metrics"]["backtest_windows"] == 3
    # Each window trained on everything before its origin: later windows on more rows.
    rows = [e.params["train_rows"] for e in windows]
    assert rows == sorted(rows)
    assert rows[1] - rows[0] == 48

    names = await task_names(lambda name: name.startswith(f"backtest:{job['job_id']}"), 4)
    assert names == {f"backtest:{job['job_id']}"} | {
        f"backtest:{job['job_id']}:{n}" for n in range(3)
    }
    logs = (await deployed.http.get(f"/ai/training/jobs/{job['job_id']}/logs?tail=1000")).json()
    assert (
        sum("window " in line["message"] and "mae=" in line["message"] for line in logs["logs"])
        == 3
    )


async def test_quantiles_holidays_and_explanations(deployed: Deployed) -> None:
    quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]
    job = await completed(deployed, {"holidays": "US", "quantiles": quantiles})
    metrics = job["metrics"]
    for name in ("coverage_90", "coverage_50", "interval_width_90", "pinball_p5", "wql"):
        assert name in metrics
    assert metrics["interval_width_90"] > metrics["interval_width_50"] > 0
    assert "coverage_80" not in metrics
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    assert "is_holiday" in model["features"]
    assert model["feature_importance"]["is_holiday"] >= 0

    served = (await deployed.http.get(f"/ai/models/{job['model_id']}/test-predictions")).json()
    first = served["predictions"][0]["quantiles"]
    assert list(first) == ["0.05", "0.25", "0.5", "0.75", "0.95"]
    assert list(first.values()) == sorted(first.values())
    evaluated = pd.read_parquet(Path(model["artifact_uri"]) / PREDICTIONS_FILE)
    actual = evaluated["actual"].to_numpy()
    inside = (actual >= evaluated["q0.05"]) & (actual <= evaluated["q0.95"])
    assert float(inside.mean()) == pytest.approx(metrics["coverage_90"])

    # Predict with explanations: each row's contributions and expected value sum to it.
    data = load_series(seed=7).tail(24 * 8)
    rows = [
        {**row, "timestamp": row["timestamp"].isoformat()} for row in data.to_dict(orient="records")
    ]
    for row in rows[-6:]:
        row["load_kw"] = None
    response = await deployed.http.post(
        f"/ai/models/{job['model_id']}/predict", json={"rows": rows, "explain": True}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 24
    for p in predictions:
        explanation = p["explanation"]
        assert set(explanation["contributions"]) == set(model["features"])
        total = explanation["expected_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(p["predicted"], rel=1e-9)
        assert list(p["quantiles"]) == ["0.05", "0.25", "0.5", "0.75", "0.95"]
    plain = await deployed.http.post(f"/ai/models/{job['model_id']}/predict", json={"rows": rows})
    assert all(p["explanation"] is None for p in plain.json()["predictions"])


def meters(count: int = 4, days: int = 60) -> pd.DataFrame:
    """Hourly meters of different sizes; the last doubles its load in its final week (a
    new tenant moved in), so it is served worst."""
    frames = []
    for index in range(count):
        meter = load_series(seed=20 + index, hours=24 * days).drop(columns=["humidity_pct"])
        meter["load_kw"] *= 1 + index
        if index == count - 1:
            meter.loc[meter.index[-24 * 7 :], "load_kw"] *= 2
        frames.append(meter.assign(meter=f"m{index}"))
    return pd.concat(frames, ignore_index=True)


async def test_per_series_metrics_are_stored_paged_and_sorted(deployed: Deployed) -> None:
    name = f"meters{uuid.uuid4().hex[:6]}"
    upload = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params={
            "timestamp_column": "timestamp",
            "target_column": "load_kw",
            "series_column": "meter",
        },
        content=meters().to_csv(index=False).encode(),
    )
    assert upload.status_code == 200, upload.text
    job = await completed(deployed, {"feature_set": name, **P10_P90}, tenant_id="tenant-a")
    url = f"/ai/models/{job['model_id']}/series-metrics"

    worst_first = (await deployed.http.get(url)).json()
    assert worst_first["total"] == 4
    assert worst_first["series"][0]["series"] == "m3"
    mases = [s["mase"] for s in worst_first["series"]]
    assert mases == sorted(mases, reverse=True)
    assert all(set(s["coverage"]) == {"80"} for s in worst_first["series"])
    tested = await deployed.http.get(f"/ai/models/{job['model_id']}/test-predictions")
    assert sum(s["rows"] for s in worst_first["series"]) == tested.json()["total"]

    by_mae = (await deployed.http.get(url, params={"order_by": "mae", "order": "asc"})).json()
    maes = [s["mae"] for s in by_mae["series"]]
    assert maes == sorted(maes)
    page = (await deployed.http.get(url, params={"page": 2, "page_size": 3})).json()
    assert (page["total"], len(page["series"])) == (4, 1)

    unknown = await deployed.http.get(url, params={"order_by": "coverage_95"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["query", "order_by"]
    assert (await deployed.http.get(url, params={"order_by": "color"})).status_code == 422

    logs = (await deployed.http.get(f"/ai/training/jobs/{job['job_id']}/logs?tail=1000")).json()
    worst = [line["message"] for line in logs["logs"] if "worst series" in line["message"]]
    assert worst
    assert worst[0].index("m3") < worst[0].index("m0")

    # A meter the model never saw is refused, naming the row and the column.
    stranger = meters().query("meter == 'm0'").tail(24 * 8).assign(meter="m9")
    rows = [
        {**row, "timestamp": row["timestamp"].isoformat()}
        for row in stranger.to_dict(orient="records")
    ]
    refused = await deployed.http.post(f"/ai/models/{job['model_id']}/predict", json={"rows": rows})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "rows", 0, "meter"]

    single = await completed(deployed, QUICK)
    missing = await deployed.http.get(f"/ai/models/{single['model_id']}/series-metrics")
    assert missing.status_code == 404
    assert "per-series" in missing.json()["detail"]


async def test_validation_scores_show_while_training_runs(deployed: Deployed) -> None:
    slow = {
        "hyperparameters": {"n_estimators": 20_000, "learning_rate": 0.002},
        "early_stopping_rounds": 0,
        "quantiles": [],
    }
    job_id = await deployed.submit(slow)
    job = await deployed.wait_until(
        job_id,
        lambda j: j["status"] == "running" and "best_mae" in (j["metrics"] or {}),
        timeout=60,
    )
    first, seen_at = job["metrics"], time.monotonic()
    assert job["stage"] == "preprocess"  # the last stage done: training is under way
    assert first["best_rmse"] >= first["best_mae"] > 0
    later = await deployed.wait_until(
        job_id, lambda j: (j["metrics"] or {}).get("best_mae", 0) < first["best_mae"], timeout=30
    )
    # Updated every few seconds: the second value came within a few seconds of the first.
    assert time.monotonic() - seen_at < 10
    assert later["status"] == "running"
    assert later["metrics"]["best_rmse"] <= first["best_rmse"]
    cancelled = await deployed.http.delete(f"/ai/training/jobs/{job_id}")
    assert cancelled.status_code == 200
    await deployed.wait_finished(job_id)
