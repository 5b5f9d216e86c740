"""Batch forecasts on the deployed service, on both databases: by id and by alias, paged
and as CSV, refused with the field at fault, followed by ``trainctl``, and recovered after
an orchestrator restart."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import ray
from sqlalchemy import func, select
from typer.testing import CliRunner

from db.forecasts import ForecastStore
from db.models import BatchForecast
from db.records import NewForecast
from domain.clock import utcnow
from serve_app.cli import app
from tests.serve_app.conftest import QUICK, Deployed
from tests.serve_app.test_forecasting import P10_P90, meters

HORIZON = 12
SERIES = ["m0", "m1", "m2", "m3"]


@dataclass(frozen=True)
class Trained:
    model_id: str
    model_name: str
    feature_set: str
    bare_set: str


async def upload(deployed: Deployed, name: str, frame: pd.DataFrame) -> None:
    response = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params={
            "timestamp_column": "timestamp",
            "target_column": "load_kw",
            "series_column": "meter",
        },
        content=frame.to_csv(index=False).encode(),
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
async def trained(service: Deployed) -> Trained:
    """A model of four meters (horizon 12, champion of its name) and a set without its
    covariate."""
    await service.idle()
    suffix = uuid.uuid4().hex[:6]
    name, bare = f"fcmeters{suffix}", f"fcbare{suffix}"
    await upload(service, name, meters(days=35))
    await upload(service, bare, meters(days=35).drop(columns=["temperature_c"]))
    config = {**QUICK, **P10_P90, "feature_set": name, "horizon": HORIZON, "promote_champion": True}
    job_id = await service.submit(config, model_name=f"fc_{suffix}")
    job = await service.wait_finished(job_id)
    assert job["status"] == "completed", job
    return Trained(job["model_id"], f"fc_{suffix}", name, bare)


async def finished(deployed: Deployed, forecast_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await deployed.http.get(f"/ai/models/forecasts/{forecast_id}")
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        if page["forecast"]["status"] in ("completed", "failed"):
            return page
        assert time.monotonic() < deadline, page["forecast"]
        await asyncio.sleep(0.1)


async def count_forecasts(deployed: Deployed) -> int:
    async with deployed.store.database.transaction() as session:
        return int(
            (await session.execute(select(func.count()).select_from(BatchForecast))).scalar_one()
        )


async def test_forecasts_every_series_pages_and_answers_csv(
    deployed: Deployed, trained: Trained
) -> None:
    body = {"feature_set": trained.feature_set, "horizon": HORIZON}
    started = await deployed.http.post(f"/ai/models/{trained.model_id}/forecasts", json=body)
    assert started.status_code == 201, started.text
    forecast = started.json()
    assert forecast["status"] in ("queued", "running")
    assert (forecast["tenant_id"], forecast["model_id"]) == ("tenant-a", trained.model_id)

    page = await finished(deployed, forecast["forecast_id"])
    done = page["forecast"]
    assert done["status"] == "completed", done
    assert (done["rows"], done["progress"], page["total"]) == (48, 1.0, 48)
    assert done["finished_at"] is not None
    assert done["error"] is None
    first = page["predictions"]
    assert len(first) == 48
    assert [row["series"] for row in first] == [s for s in SERIES for _ in range(HORIZON)]
    history_end = pd.Timestamp(meters(days=35)["timestamp"].max())
    stamps = pd.to_datetime([row["timestamp"] for row in first[:HORIZON]])
    assert list(stamps) == [history_end + pd.Timedelta(hours=k) for k in range(1, HORIZON + 1)]
    assert all(set(row["quantiles"]) == {"0.1", "0.5", "0.9"} for row in first)
    assert all(row["quantiles"]["0.1"] <= row["quantiles"]["0.9"] for row in first)

    url = f"/ai/models/forecasts/{forecast['forecast_id']}"
    last = (await deployed.http.get(url, params={"page": 5, "page_size": 10})).json()
    assert (last["total"], last["page"], len(last["predictions"])) == (48, 5, 8)
    assert last["predictions"] == first[40:]
    assert (await deployed.http.get(url, params={"page_size": 1001})).status_code == 422
    one = (await deployed.http.get(url, params={"series": SERIES[1], "page_size": 5})).json()
    assert (one["total"], one["predictions"]) == (HORIZON, first[HORIZON : HORIZON + 5])
    missing = (await deployed.http.get(url, params={"series": "m9"})).json()
    assert (missing["total"], missing["predictions"]) == (0, [])
    assert (await deployed.http.get(url, params={"series": ""})).status_code == 422

    csv = await deployed.http.get(url, headers={"Accept": "text/csv"})
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(csv.text))
    assert list(table.columns) == ["series", "timestamp", "predicted", "q0.1", "q0.5", "q0.9"]
    assert len(table) == 48
    assert table["predicted"].tolist() == pytest.approx([row["predicted"] for row in first])
    csv = await deployed.http.get(url, params={"series": SERIES[1]}, headers={"Accept": "text/csv"})
    assert pd.read_csv(io.StringIO(csv.text))["series"].tolist() == [SERIES[1]] * HORIZON


async def test_an_alias_forecasts_the_series_asked_for(
    deployed: Deployed, trained: Trained
) -> None:
    url = f"/ai/models/tenant-a/{trained.model_name}@champion/forecasts"
    body = {"feature_set": trained.feature_set, "horizon": 3, "series": ["m2", "m0"]}
    started = await deployed.http.post(url, json=body)
    assert started.status_code == 201, started.text
    assert started.json()["model_id"] == trained.model_id
    page = await finished(deployed, started.json()["forecast_id"])
    assert page["forecast"]["series"] == ["m2", "m0"]
    assert [row["series"] for row in page["predictions"]] == ["m0"] * 3 + ["m2"] * 3
    missing = await deployed.http.post(
        f"/ai/models/tenant-a/{trained.model_name}@nobody/forecasts", json=body
    )
    assert missing.status_code == 404


async def test_bad_requests_name_the_field_and_write_nothing(
    deployed: Deployed, trained: Trained
) -> None:
    before = await count_forecasts(deployed)
    url = f"/ai/models/{trained.model_id}/forecasts"
    good = {"feature_set": trained.feature_set, "horizon": HORIZON}
    cases: list[tuple[dict[str, Any], list[str], str]] = [
        ({"series": ["m0", "m9"]}, ["body", "series"], "m9"),
        ({"horizon": HORIZON + 1}, ["body", "horizon"], f"horizon of {HORIZON}"),
        ({"feature_set": "no_such_set"}, ["body", "feature_set"], "no_such_set"),
        ({"feature_set": trained.bare_set}, ["body", "feature_set"], "temperature_c"),
        ({"horizon": 0}, ["body", "horizon"], ""),
        ({"series": []}, ["body", "series"], ""),
        ({"colour": "red"}, ["body", "colour"], ""),
    ]
    for change, loc, words in cases:
        response = await deployed.http.post(url, json={**good, **change})
        assert response.status_code == 422, (change, response.text)
        [detail] = response.json()["detail"]
        assert detail["loc"] == loc, (change, detail)
        assert words in detail["msg"], (change, detail)
    unknown = await deployed.http.post("/ai/models/tenant-a:nothing:1/forecasts", json=good)
    assert unknown.status_code == 404
    assert (await deployed.http.get(f"/ai/models/forecasts/{uuid.uuid4()}")).status_code == 404
    assert await count_forecasts(deployed) == before


async def test_a_tenant_sees_and_lists_only_its_own_forecasts(
    deployed: Deployed, trained: Trained
) -> None:
    body = {"feature_set": trained.feature_set, "horizon": 2, "series": ["m1"]}
    started = await deployed.http.post(f"/ai/models/{trained.model_id}/forecasts", json=body)
    forecast_id = started.json()["forecast_id"]
    async with deployed.client_for(await deployed.key("tenant-b")) as other:
        assert (await other.get(f"/ai/models/forecasts/{forecast_id}")).status_code == 404
        refused = await other.post(f"/ai/models/{trained.model_id}/forecasts", json=body)
        assert refused.status_code == 404
        listed = await other.get("/ai/models/forecasts")
        assert listed.status_code == 200
        assert forecast_id not in [f["forecast_id"] for f in listed.json()["forecasts"]]
        assert (await other.get("/ai/models/forecasts?tenant_id=tenant-a")).status_code == 403
    async with deployed.client_for(await deployed.key("tenant-a")) as owner:
        page = await owner.get(f"/ai/models/forecasts/{forecast_id}")
        assert page.status_code == 200
        query = f"/ai/models/forecasts?model_id={trained.model_id}&page_size=100"
        mine = (await owner.get(query)).json()
        assert forecast_id in [f["forecast_id"] for f in mine["forecasts"]]
        assert {f["tenant_id"] for f in mine["forecasts"]} == {"tenant-a"}
        stamps = [f["created_at"] for f in mine["forecasts"]]
        assert stamps == sorted(stamps, reverse=True)
        bad = await owner.get("/ai/models/forecasts?status=sideways")
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "status"]
    assert (await finished(deployed, forecast_id))["forecast"]["status"] == "completed"
    done = await deployed.http.get(
        f"/ai/models/forecasts?model_id={trained.model_id}&status=completed&page_size=100"
    )
    assert forecast_id in [f["forecast_id"] for f in done.json()["forecasts"]]
    assert {f["status"] for f in done.json()["forecasts"]} == {"completed"}


def test_trainctl_forecast_follows_it_and_writes_csv(
    deployed: Deployed, trained: Trained, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    out = tmp_path / "forecast.csv"
    args = ["forecast", trained.model_id, "--feature-set", trained.feature_set, "--horizon", "6"]
    result = runner.invoke(app, [*args, "--series", "m0,m3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "completed: forecast" in result.output
    assert "12 rows" in result.output
    table = pd.read_csv(out)
    assert table["series"].tolist() == ["m0"] * 6 + ["m3"] * 6

    alias = f"tenant-a/{trained.model_name}@champion"
    shown = runner.invoke(
        app, ["forecast", alias, "--feature-set", trained.feature_set, "--horizon", "2"]
    )
    assert shown.exit_code == 0, shown.output
    assert "8 rows" in shown.output
    assert "m3" in shown.output

    refused = runner.invoke(app, [*args[:-1], "99"])
    assert refused.exit_code == 1
    assert "horizon" in refused.output

    def forecast_count() -> int:
        listed = httpx.get(
            f"{deployed.running.api_url}/ai/models/forecasts",
            params={"model_id": trained.model_id},
            headers={"Authorization": f"Bearer {deployed.admin_key}"},
        )
        total: int = listed.json()["total"]
        return total

    before = forecast_count()
    nowhere = runner.invoke(app, [*args, "--out", str(tmp_path / "no" / "such.csv")])
    assert nowhere.exit_code == 2, nowhere.output  # refused before anything is sent
    assert "there is no directory" in nowhere.output
    into_folder = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert into_folder.exit_code == 2, into_folder.output
    assert "is a directory" in into_folder.output
    assert forecast_count() == before

    forecast_id = result.output.split("completed: forecast ")[1].split(",")[0]
    listed = runner.invoke(app, ["forecasts", "--model-id", trained.model_id, "--page-size", "100"])
    assert listed.exit_code == 0, listed.output
    assert forecast_id in listed.output
    bad = runner.invoke(app, ["forecasts", "--status", "sideways"])
    assert bad.exit_code == 1
    assert "status" in bad.output


@pytest.mark.both_databases
async def test_forecasts_running_at_a_restart_run_again_or_fail(
    deployed: Deployed, trained: Trained
) -> None:
    store = ForecastStore(deployed.store.database)
    limit = deployed.config.orchestrator.max_attempts

    async def running(attempts: int) -> str:
        forecast = NewForecast("tenant-a", trained.model_id, trained.feature_set, 4, ("m2",))
        await store.create(forecast, utcnow())
        for attempt in range(attempts):
            if attempt:
                assert await store.requeue(forecast.forecast_id)
            assert await store.start(forecast.forecast_id, utcnow())
        return forecast.forecast_id

    again, given_up = await running(1), await running(limit)
    ray.kill(deployed.running.orchestrator, no_restart=False)

    rerun = await finished(deployed, again, timeout=120)
    assert rerun["forecast"]["status"] == "completed"
    assert (rerun["forecast"]["attempts"], rerun["forecast"]["rows"]) == (2, 4)
    failed = (await finished(deployed, given_up))["forecast"]
    assert failed["status"] == "failed"
    assert f"interrupted {limit} times" in failed["error"]
