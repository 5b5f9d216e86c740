"""Detections on the deployed service: a window scored as ``predict_rows`` scores the same
rows, its events paged, its rows as CSV, refused with the field at fault and nothing
written, by alias, and followed by ``trainctl``."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import func, select
from typer.testing import CliRunner

from db.models import BatchForecast
from pipeline.forecasting.predict import history_needed, predict_rows
from pipeline.models.artifacts import load_artifact
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from serve_app.cli import app
from tests.serve_app.conftest import TEN_WEEKS, Deployed
from tests.serve_app.test_batch_forecasts import upload
from tests.serve_app.test_console_promotions import browser, page  # noqa: F401 (fixtures)
from tests.serve_app.test_forecasting import meters

SMALL = {"hyperparameters": {"n_estimators": 60, "learning_rate": 0.2}, "quantiles": []}
SET = "anomaly_basic"


@dataclass(frozen=True)
class Models:
    anomaly_id: str
    anomaly_name: str
    forecast_id: str
    artifact_uri: str


@pytest.fixture(scope="module")
async def models(service: Deployed) -> Models:
    """A small anomaly model of the demo set (champion of its name) and a forecasting one."""
    await service.idle()
    name = f"detector_{uuid.uuid4().hex[:6]}"
    config = {**SMALL, "feature_set": SET, "horizon": 1, "promote_champion": True}
    anomaly = await service.submit(config, model_type="anomaly", model_name=name)
    forecast = await service.submit({**TEN_WEEKS, **SMALL}, model_name=f"fc_{name}")
    done = [await service.wait_finished(job_id) for job_id in (anomaly, forecast)]
    assert [job["status"] for job in done] == ["completed", "completed"], done
    model = (await service.http.get(f"/ai/models/{done[0]['model_id']}")).json()
    return Models(done[0]["model_id"], name, done[1]["model_id"], model["artifact_uri"])


def last_days(deployed: Deployed, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A window ending a day before the set's last row (its test part has anomalies)."""
    last = FeatureStore(deployed.config.pipeline.features_root).keys(SET).last
    assert last is not None
    end = last - pd.Timedelta(days=1)
    return end - pd.Timedelta(days=days), end


async def finished(deployed: Deployed, detection_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await deployed.http.get(f"/ai/models/detections/{detection_id}")
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        if state["detection"]["status"] in ("completed", "failed"):
            return state
        assert time.monotonic() < deadline, state["detection"]
        await asyncio.sleep(0.1)


async def count_rows(deployed: Deployed) -> int:
    async with deployed.store.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(BatchForecast)) or 0)


async def test_a_window_scores_as_predict_rows_with_its_events_and_csv(
    deployed: Deployed, models: Models
) -> None:
    start, end = last_days(deployed, 14)
    body = {"start": start.isoformat(), "end": end.isoformat()}
    started = await deployed.http.post(f"/ai/models/{models.anomaly_id}/detections", json=body)
    assert started.status_code == 201, started.text
    detection_id = started.json()["detection_id"]
    assert started.json()["feature_set"] == SET
    detection = (await finished(deployed, detection_id))["detection"]
    assert detection["status"] == "completed", detection
    assert detection["rows"] == 14 * 24
    assert pd.Timestamp(detection["start"]) == start
    everything = await deployed.http.get(
        f"/ai/models/detections/{detection_id}", params={"page_size": 1000}
    )
    rows = pd.DataFrame(everything.json()["rows"])
    assert len(rows) == everything.json()["total"] == 14 * 24

    # The same rows and history, served by predict_rows.
    artifact = load_artifact(Location(models.artifact_uri))
    spec = artifact.feature_spec
    stored = artifact.metadata["anomaly_detector"]
    reach = history_needed(spec) + stored["calibration"]["window"] + stored["suppress"]
    read_from = start - reach * spec.step
    raw = FeatureStore(deployed.config.pipeline.features_root).load(SET, end, start=read_from)
    frame = raw.data.drop(columns=["is_anomaly"])
    frame["timestamp"] = frame["timestamp"].map(pd.Timestamp.isoformat)
    records = [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]
    served = predict_rows(artifact, records)
    inside = [p for p in served.rows if start <= p.timestamp < end]
    assert [p.timestamp for p in inside] == list(pd.to_datetime(rows["timestamp"]))
    np.testing.assert_allclose([p.predicted for p in inside], rows["predicted"])
    scores = np.array([p.anomaly_score for p in inside], dtype=float)
    np.testing.assert_allclose(scores, rows["anomaly_score"].astype(float))
    assert [p.anomaly for p in inside] == rows["anomaly"].tolist()
    assert rows["anomaly"].any()
    assert rows["label"].any()

    events = await deployed.http.get(f"/ai/models/detections/{detection_id}/events")
    assert events.status_code == 200, events.text
    listed = events.json()["events"]
    assert len(listed) == events.json()["total"] == detection["events"] > 0
    assert served.events is not None
    expected = [e for e in served.events if e.end >= start and e.start < end]
    assert [pd.Timestamp(e["start"]) for e in listed] == [e.start for e in expected]
    assert [e["severity"] for e in listed] == [e.severity for e in expected]
    second = await deployed.http.get(
        f"/ai/models/detections/{detection_id}/events", params={"page": 2, "page_size": 1}
    )
    assert second.json()["events"] == listed[1:2]
    other = await deployed.http.get(f"/ai/models/detections/{detection_id}", params={"series": "x"})
    assert (other.json()["total"], other.json()["rows"]) == (0, [])  # the set has one, unnamed

    csv = await deployed.http.get(
        f"/ai/models/detections/{detection_id}", headers={"Accept": "text/csv"}
    )
    assert csv.status_code == 200
    table = pd.read_csv(io.StringIO(csv.text))
    assert list(table.columns) == [
        "series",
        "timestamp",
        "actual",
        "predicted",
        "anomaly_score",
        "anomaly",
        "label",
    ]
    assert len(table) == 14 * 24
    listing = (await deployed.http.get("/ai/models/detections")).json()
    assert listing["detections"][0]["detection_id"] == detection_id
    forecasts = (await deployed.http.get("/ai/models/forecasts", params={"page_size": 100})).json()
    assert detection_id not in [f["forecast_id"] for f in forecasts["forecasts"]]
    assert (await deployed.http.get(f"/ai/models/forecasts/{detection_id}")).status_code == 404


async def test_the_console_shades_the_events_and_the_labels(
    deployed: Deployed,
    models: Models,
    page: Page,  # noqa: F811 (the fixture)
) -> None:
    start, end = last_days(deployed, 14)
    body = {"start": start.isoformat(), "end": end.isoformat()}
    started = await deployed.http.post(f"/ai/models/{models.anomaly_id}/detections", json=body)
    assert (await finished(deployed, started.json()["detection_id"]))["detection"]["events"]
    await page.goto(f"/ui/#/models/{models.anomaly_id}")
    section = page.get_by_test_id("detections")
    canvas = section.get_by_test_id("detection-chart").locator("canvas")
    await expect(canvas).to_have_attribute("data-points", str(2 * 14 * 24))
    await expect(section.locator("[data-span=event]").first).to_be_attached()
    await expect(section.locator("[data-span=label]").first).to_be_attached()
    assert await section.get_by_test_id("detection-events").locator("tbody tr").count() > 0
    # One series: no picker, and nothing in its place (a bare `false` was once drawn).
    assert await section.get_by_test_id("detection-series").count() == 0
    assert "false" not in (await section.inner_text()).split()


async def test_the_console_charts_a_multi_series_detection_a_series_at_a_time(
    deployed: Deployed,
    page: Page,  # noqa: F811 (the fixture)
) -> None:
    """Two meters, each with a spike in its last days: the chart shows one meter's rows
    and events, and the picker switches to the other's; without events, the first meter's."""
    frame = meters(count=3, days=35)
    frame = frame[frame["meter"] != "m2"].copy()  # m2's load doubles: a week-long anomaly
    end = frame["timestamp"].max()
    for meter, days_back in (("m0", 4), ("m1", 2)):
        start = end - pd.Timedelta(days=days_back)
        spike = (frame["meter"] == meter) & frame["timestamp"].between(
            start, start + pd.Timedelta(hours=2)
        )
        frame.loc[spike, "load_kw"] *= 4
    name = f"spikes{uuid.uuid4().hex[:6]}"
    await upload(deployed, name, frame)
    config = {**SMALL, "feature_set": name, "horizon": 1}
    submitted = await deployed.submit(config, model_type="anomaly", model_name=name)
    job = await deployed.wait_finished(submitted)
    assert job["status"] == "completed", job
    window = {"start": (end - pd.Timedelta(days=6)).isoformat(), "end": end.isoformat()}
    started = await deployed.http.post(f"/ai/models/{job['model_id']}/detections", json=window)
    detection_id = started.json()["detection_id"]
    assert (await finished(deployed, detection_id))["detection"]["status"] == "completed"
    listed = await deployed.http.get(f"/ai/models/detections/{detection_id}/events")
    events = listed.json()["events"]
    named = list(dict.fromkeys(event["series"] for event in events))
    assert set(named) == {"m0", "m1"}, events
    m1_rows = await deployed.http.get(
        f"/ai/models/detections/{detection_id}", params={"series": "m1", "page_size": 1000}
    )
    assert {row["series"] for row in m1_rows.json()["rows"]} == {"m1"}
    assert m1_rows.json()["total"] == 6 * 24
    m1_csv = await deployed.http.get(
        f"/ai/models/detections/{detection_id}",
        params={"series": "m1"},
        headers={"Accept": "text/csv"},
    )
    assert set(pd.read_csv(io.StringIO(m1_csv.text))["series"]) == {"m1"}
    assert len(m1_csv.text.splitlines()) == 1 + 6 * 24

    await page.goto(f"/ui/#/models/{job['model_id']}")
    section = page.get_by_test_id("detections")
    picker = section.get_by_test_id("detection-series")
    await expect(picker.locator("option")).to_have_count(2)
    canvas = section.get_by_test_id("detection-chart").locator("canvas")
    for series in (named[0], named[1]):
        await picker.select_option(series)
        peak = next(e["peak_at"] for e in events if e["series"] == series)
        await expect(canvas).to_have_attribute("data-points", str(2 * 6 * 24))
        await expect(section.locator(f"[data-span=event][title$='{peak}']").first).to_be_attached()

    # A model that raises no alarm (scores stop at 30): its chart is the first series' alone.
    quiet = await deployed.wait_finished(
        await deployed.submit({**config, "alarm_score": 30}, model_type="anomaly", model_name=name)
    )
    started = await deployed.http.post(f"/ai/models/{quiet['model_id']}/detections", json=window)
    done = await finished(deployed, started.json()["detection_id"])
    assert done["detection"]["events"] == 0
    await page.goto(f"/ui/#/models/{quiet['model_id']}")
    canvas = page.get_by_test_id("detections").get_by_test_id("detection-chart").locator("canvas")
    await expect(canvas).to_have_attribute("data-points", str(2 * 6 * 24))


async def test_an_alias_detects_with_the_default_set_to_its_end(
    deployed: Deployed, models: Models
) -> None:
    start, _ = last_days(deployed, 2)
    url = f"/ai/models/tenant-a/{models.anomaly_name}@champion/detections"
    started = await deployed.http.post(url, json={"start": start.isoformat()})
    assert started.status_code == 201, started.text
    assert started.json()["model_id"] == models.anomaly_id
    detection = (await finished(deployed, started.json()["detection_id"]))["detection"]
    assert detection["status"] == "completed", detection
    assert detection["rows"] == 3 * 24 + 1  # to the set's last row: a day and a row more
    missing = await deployed.http.post(
        f"/ai/models/tenant-a/{models.anomaly_name}@nobody/detections", json={}
    )
    assert missing.status_code == 404


async def test_bad_requests_name_the_field_and_write_nothing(
    deployed: Deployed, models: Models
) -> None:
    before = await count_rows(deployed)
    url = f"/ai/models/{models.anomaly_id}/detections"
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        (url, {"start": "2025-03-02T00:00:00Z", "end": "2025-03-01T00:00:00Z"}, ["body", "end"]),
        (url, {"start": "2040-01-01T00:00:00Z"}, ["body", "start"]),
        (url, {"end": "2000-01-01T00:00:00Z"}, ["body", "end"]),
        (url, {"series": ["m9"]}, ["body", "series"]),
        (url, {"feature_set": "no_such_set"}, ["body", "feature_set"]),
        (url, {"start": "yesterday"}, ["body", "start"]),
        (url, {"colour": "red"}, ["body", "colour"]),
        (f"/ai/models/{models.forecast_id}/detections", {}, ["body", "model_type"]),
    ]
    for target, body, loc in cases:
        response = await deployed.http.post(target, json=body)
        assert response.status_code == 422, (body, response.text)
        [detail] = response.json()["detail"]
        assert detail["loc"] == loc, (body, detail)
    unknown = await deployed.http.post("/ai/models/tenant-a:nothing:1/detections", json={})
    assert unknown.status_code == 404
    for path in ("", "/events"):
        gone = await deployed.http.get(f"/ai/models/detections/{uuid.uuid4()}{path}")
        assert gone.status_code == 404
    assert await count_rows(deployed) == before


def test_trainctl_detects_waits_and_shows_events(
    deployed: Deployed, models: Models, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    start, end = last_days(deployed, 7)
    args = ["detect", models.anomaly_id, "--start", start.isoformat(), "--end", end.isoformat()]
    result = runner.invoke(app, [*args, "--wait"])
    assert result.exit_code == 0, result.output
    assert f"{7 * 24} rows" in result.output
    assert "events (page 1)" in result.output
    detection_id = result.output.split("completed: detection ")[1].split(",")[0]

    alias = ["detect", f"tenant-a/{models.anomaly_name}", "--alias", "champion"]
    queued = runner.invoke(app, [*alias, "--start", end.isoformat()])
    assert queued.exit_code == 0, queued.output
    assert "detection" in queued.output

    listed = runner.invoke(app, ["detections", "list", "--model-id", models.anomaly_id])
    assert listed.exit_code == 0, listed.output
    assert detection_id in listed.output
    shown = runner.invoke(app, ["detections", "show", detection_id])
    assert shown.exit_code == 0, shown.output
    assert "completed: detection" in shown.output
    events = runner.invoke(app, ["detections", "events", detection_id])
    assert events.exit_code == 0, events.output
    assert "peak_score" in events.output
    elsewhere = runner.invoke(app, ["detections", "events", detection_id, "--series", "m9"])
    assert elsewhere.exit_code == 0, elsewhere.output
    assert "0 of 0 events" in elsewhere.output  # the set's one series has no name
    for series, rows in ((None, 7 * 24), ("m9", 0)):
        out = tmp_path / f"detection-{series}.csv"
        chosen = ["--series", series] if series else []
        wrote = runner.invoke(app, ["detections", "show", detection_id, *chosen, "--out", str(out)])
        assert wrote.exit_code == 0, wrote.output
        assert len(out.read_text().splitlines()) == 1 + rows

    refused = runner.invoke(app, ["detect", models.forecast_id])
    assert refused.exit_code == 1
    assert "model_type" in refused.output
