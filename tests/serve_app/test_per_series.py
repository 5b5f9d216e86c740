"""One model per series through the service: a fan-out of training tasks, one registered
bundle, predictions routed by series, per-series metrics, and the refusals."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from pipeline.forecasting.predict import predict_rows
from pipeline.models.artifacts import load_artifact
from pipeline.storage import Location
from tests.pipeline.forecasting.test_predict import as_json_rows
from tests.pipeline.training.test_per_series import alone, meters
from tests.ray_state import task_names
from tests.serve_app.conftest import QUICK, Deployed, count_jobs


async def upload(deployed: Deployed, series_column: str | None = "meter") -> str:
    name = f"meters{uuid.uuid4().hex[:6]}"
    params = {"timestamp_column": "timestamp", "target_column": "load_kw"}
    table = meters()
    if series_column is None:
        table = table.query("meter == 'm0'").drop(columns=["meter"])
    else:
        params["series_column"] = series_column
    response = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params=params,
        content=table.to_csv(index=False).encode(),
    )
    assert response.status_code == 200, response.text
    return name


async def test_a_per_series_job_trains_registers_and_routes_each_series(
    deployed: Deployed,
) -> None:
    name = await upload(deployed)
    job_id = await deployed.submit(
        {"feature_set": name, "per_series": True, **QUICK},
        model_name=f"ps-{uuid.uuid4().hex[:8]}",
    )
    job = await deployed.wait_finished(job_id, timeout=180)
    assert job["status"] == "completed", job
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()

    # The series trained in a task of their own (the state API lags task ends: poll).
    names = await task_names(lambda name: name.startswith(f"train:{job_id}"), 2)
    assert names == {f"train:{job_id}", f"train:{job_id}:0"}

    metrics = (await deployed.http.get(f"/ai/models/{job['model_id']}/series-metrics")).json()
    assert sorted(s["series"] for s in metrics["series"]) == ["m0", "m1", "m2"]

    rows = meters().groupby("meter").tail(24 * 10).reset_index(drop=True)
    for row in rows.index[rows.groupby("meter").cumcount(ascending=False) < 6]:
        rows.loc[row, "load_kw"] = np.nan
    response = await deployed.http.post(
        f"/ai/models/{job['model_id']}/predict", json={"rows": as_json_rows(rows)}
    )
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    assert set(served["series"]) == {"m0", "m1", "m2"}

    # Series m2's forecasts are m2's own model's, served as a model of its own.
    artifact = load_artifact(Location(model["artifact_uri"]))
    own = predict_rows(alone(artifact, 2), as_json_rows(rows[rows["meter"] == "m2"])).rows
    mine = served[served["series"] == "m2"]["predicted"].to_numpy()
    np.testing.assert_allclose(mine, [p.predicted for p in own])

    unknown = rows[rows["meter"] == "m0"].assign(meter="m9").reset_index(drop=True)
    refused = await deployed.http.post(
        f"/ai/models/{job['model_id']}/predict", json={"rows": as_json_rows(unknown)}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "rows", 0, "meter"]


async def test_per_series_jobs_that_could_not_run_are_refused_and_nothing_is_written(
    deployed: Deployed,
) -> None:
    with_series = await upload(deployed)
    single = await upload(deployed, series_column=None)
    before = await count_jobs(deployed.store)
    for config, hint in [
        ({"feature_set": single, "per_series": True}, "no series column"),
        ({"feature_set": with_series, "per_series": True, "enable_hpo": True}, "enable_hpo"),
        (
            {"feature_set": with_series, "per_series": True, "backtest": {"windows": 2}},
            "backtest",
        ),
    ]:
        body = {
            "tenant_id": "tenant-a",
            "model_type": "forecast",
            "model_name": "refused",
            "config": {"target_variable": "load_kw", **QUICK, **config},
        }
        response = await deployed.http.post("/ai/training/jobs/start", json=body)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "config", "per_series"]
        assert hint in detail["msg"]
    assert await count_jobs(deployed.store) == before
