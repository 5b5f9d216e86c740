"""Monitoring on the deployed service (its rows on both databases in
tests/db/test_monitoring.py): a batch forecast is scored once a new version of its
feature set brings its actuals, with the figures computed by hand from the stored
forecast and the actuals, per lead and per series, the model's drift status and gauges;
other tenants and unknown ids get 404."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pandas as pd
import pytest

from tests.serve_app.conftest import QUICK, Deployed
from tests.serve_app.test_batch_forecasts import finished, upload
from tests.serve_app.test_forecasting import P10_P90, meters

HORIZON = 12


async def monitor(deployed: Deployed) -> int:
    scored: int = await deployed.running.orchestrator.monitor.remote()
    return scored


async def test_a_forecast_is_scored_when_its_actuals_arrive(deployed: Deployed) -> None:
    full = meters(days=36)
    full["timestamp"] = pd.to_datetime(full["timestamp"], utc=True)
    history = full[full["timestamp"] <= full["timestamp"].max() - pd.Timedelta(days=1)]
    name = f"monmeters{uuid.uuid4().hex[:6]}"
    await upload(deployed, name, history)
    config = {**QUICK, **P10_P90, "feature_set": name, "horizon": HORIZON}
    job = await deployed.wait_finished(
        await deployed.submit(config, model_name=f"mon_{name}"), timeout=180
    )
    assert job["status"] == "completed", job
    model_id = job["model_id"]
    started = await deployed.http.post(
        f"/ai/models/{model_id}/forecasts", json={"feature_set": name, "horizon": HORIZON}
    )
    assert started.status_code == 201, started.text
    forecast_id = started.json()["forecast_id"]
    assert (await finished(deployed, forecast_id))["forecast"]["status"] == "completed"

    assert await monitor(deployed) == 0  # no actual has arrived
    url = f"/ai/models/{model_id}/monitoring"
    nothing = (await deployed.http.get(url)).json()
    assert (nothing["total"], nothing["evaluations"], nothing["status"]) == (0, [], None)
    assert set(nothing["test"]) >= {"mae", "rmse", "coverage_80"}

    logged_id = await predict_logged(deployed, model_id, full, history)
    logged = (await deployed.http.get(f"/ai/models/forecasts/{logged_id}")).json()["forecast"]
    assert (logged["source"], logged["status"], logged["rows"]) == ("predict", "completed", 6)

    partial = full[full["timestamp"] <= history["timestamp"].max() + pd.Timedelta(hours=1)]
    await upload(deployed, name, partial)  # a version with the next hour's actuals only
    assert await monitor(deployed) == 2
    early = await deployed.http.get(url)  # partly scored: listed, not yet judged
    assert early.status_code == 200, early.text
    assert early.json()["status"] is None
    assert [e["health"] for e in early.json()["evaluations"]] == [None, None]
    one = await deployed.http.get(f"{url}/{forecast_id}")
    assert (one.status_code, one.json()["rows"], one.json()["health"]) == (200, 4, None)

    await upload(deployed, name, full)  # a new version: the last day's actuals
    assert await monitor(deployed) == 2
    assert await monitor(deployed) == 0  # every row scored: not again

    page = (await deployed.http.get(url)).json()
    assert page["total"] == 2
    by_id = {e["forecast_id"]: e for e in page["evaluations"]}
    evaluation = by_id[forecast_id]
    assert (by_id[logged_id]["rows"], by_id[logged_id]["forecast_rows"]) == (6, 6)
    stored = await deployed.http.get(
        f"/ai/models/forecasts/{forecast_id}", headers={"Accept": "text/csv"}
    )
    forecast = pd.read_csv(io.StringIO(stored.text))
    forecast["timestamp"] = pd.to_datetime(forecast["timestamp"], utc=True)
    joined = forecast.merge(
        full.rename(columns={"meter": "series", "load_kw": "actual"}), on=["series", "timestamp"]
    )
    errors = joined["predicted"] - joined["actual"]
    inside = (joined["actual"] >= joined["q0.1"]) & (joined["actual"] <= joined["q0.9"])
    assert (evaluation["forecast_id"], evaluation["rows"], evaluation["forecast_rows"]) == (
        forecast_id,
        4 * HORIZON,
        4 * HORIZON,
    )
    assert evaluation["metrics"]["mae"] == pytest.approx(np.mean(np.abs(errors)))
    assert evaluation["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert evaluation["metrics"]["bias"] == pytest.approx(np.mean(errors))
    assert evaluation["metrics"]["coverage_80"] == pytest.approx(np.mean(inside))
    assert pd.Timestamp(evaluation["origin"]) == forecast["timestamp"].min()

    status = page["status"]
    assert status["status"] in ("ok", "watch", "drifted")
    accuracy = status["accuracy"]
    assert accuracy["windows"] == 2  # the batch forecast and the logged prediction
    assert accuracy["test_windows"] >= 2
    maes = [e["metrics"]["mae"] for e in page["evaluations"]]
    assert accuracy["live_mae"] == pytest.approx(np.mean(maes))
    assert accuracy["ratio"] == pytest.approx(accuracy["live_mae"] / accuracy["test_mae"])
    assert status["target"]["rows"] == 4 * HORIZON  # the rows the two forecasts span
    assert set(status["covariates"]) == {"temperature_c"}

    detail = (await deployed.http.get(f"{url}/{forecast_id}")).json()
    assert [row["lead"] for row in detail["by_lead"]] == list(range(1, HORIZON + 1))
    first = joined.sort_values("timestamp").groupby("series").head(1)
    first_errors = first["predicted"] - first["actual"]
    assert detail["by_lead"][0]["mae"] == pytest.approx(np.mean(np.abs(first_errors)))
    assert sorted(detail["by_series"]) == ["m0", "m1", "m2", "m3"]
    m3 = joined[joined["series"] == "m3"]
    assert detail["by_series"]["m3"]["mae"] == pytest.approx(
        np.mean(np.abs(m3["predicted"] - m3["actual"]))
    )

    metrics = (await deployed.http.get("/metrics")).text
    assert f'training_model_live_mae{{model_id="{model_id}"}}' in metrics
    assert f'training_model_drift_ratio{{model_id="{model_id}"}}' in metrics

    other = deployed.client_for(await deployed.key("tenant-b"))
    async with other:
        assert (await other.get(url)).status_code == 404
    assert (await deployed.http.get(f"{url}/{uuid.uuid4()}")).status_code == 404
    assert (await deployed.http.get("/ai/models/tenant-a:nope:1/monitoring")).status_code == 404
    assert (await deployed.http.get(url, params={"page_size": 501})).status_code == 422
    origin = pd.Timestamp(evaluation["origin"]).tz_convert("UTC").tz_localize(None)
    naive = {"since": origin.isoformat(), "until": (origin + pd.Timedelta(hours=1)).isoformat()}
    in_utc = await deployed.http.get(url, params=naive)  # without a zone: UTC
    assert in_utc.status_code == 200, in_utc.text
    found = in_utc.json()["evaluations"]
    assert forecast_id in [e["forecast_id"] for e in found]
    assert all(pd.Timestamp(e["origin"]) == pd.Timestamp(evaluation["origin"]) for e in found)
    out_of_range = await deployed.http.get(url, params={"since": "0001-01-01T00:00:00+05:00"})
    assert out_of_range.status_code == 422, out_of_range.text
    later = await deployed.http.get(url, params={"since": "2999-01-01"})
    assert (later.status_code, later.json()["total"]) == (200, 0)


async def predict_logged(
    deployed: Deployed, model_id: str, full: pd.DataFrame, history: pd.DataFrame
) -> str:
    """Predict meter m1's next six hours with ``log``; the stored forecast's id."""
    m1 = full[full["meter"] == "m1"]
    rows = m1[m1["timestamp"] <= history["timestamp"].max() + pd.Timedelta(hours=6)].tail(24 * 8)
    body = [{**row, "timestamp": row["timestamp"].isoformat()} for row in rows.to_dict("records")]
    for row in body[-6:]:
        row["load_kw"] = None
    response = await deployed.http.post(
        f"/ai/models/{model_id}/predict", json={"rows": body, "log": True}
    )
    assert response.status_code == 200, response.text
    forecast_id: str = response.json()["forecast_id"]
    plain = await deployed.http.post(f"/ai/models/{model_id}/predict", json={"rows": body})
    assert plain.json()["forecast_id"] is None
    return forecast_id
