"""Appending rows to a feature set over HTTP and with ``trainctl``: a new version jobs pin,
rows the set has refused (or replaced), columns checked one by one, an upload's limits;
a refused append stores nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from ray import serve
from typer.testing import CliRunner

from serve_app.app import create_app
from serve_app.cli import app
from serve_app.deployment import APP_NAME, connect
from serve_app.service import api_config
from serve_app.uploads import UploadLimits
from tests.serve_app.conftest import Deployed

UPLOAD = {"timestamp_column": "ts", "target_column": "demand", "series_column": "meter"}


def meters(start: str, hours: int, count: int = 3) -> pd.DataFrame:
    """Hourly demand of ``count`` meters from ``start``, with a temperature."""
    stamps = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    rng = np.random.default_rng(hours)
    hour = np.tile(stamps.hour.to_numpy(), count)
    return pd.DataFrame(
        {
            "ts": np.tile(stamps, count),
            "meter": np.repeat([f"m{i}" for i in range(count)], hours),
            "demand": (
                50 + 20 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 2, count * hours)
            ).round(3),
            "temp": rng.normal(10, 3, count * hours).round(2),
        }
    )


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def stored(deployed: Deployed, name: str) -> list[str]:
    """Every file of shared feature set ``name`` on disk."""
    root = deployed.data_dir / "features" / name
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


async def uploaded(http: httpx.AsyncClient, hours: int = 24 * 60) -> tuple[str, dict[str, Any]]:
    name = f"rows_{uuid.uuid4().hex[:8]}"
    response = await http.put(
        f"/ai/training/feature-sets/{name}", params=UPLOAD, content=csv(meters("2025-01-01", hours))
    )
    assert response.status_code == 200, response.text
    return name, response.json()


async def versions(http: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await http.get(f"/ai/training/feature-sets/{name}/versions")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["feature_sets"]
    return listed


async def test_appended_rows_are_a_version_jobs_pin(deployed: Deployed) -> None:
    name, first = await uploaded(deployed.http)
    day = meters("2025-03-02", 24)
    response = await deployed.http.post(f"/ai/training/feature-sets/{name}/rows", content=csv(day))
    assert response.status_code == 201, response.text
    appended = response.json()
    assert (appended["operation"], appended["previous_version"]) == ("append", first["version"])
    assert (appended["appended_rows"], appended["replaced_rows"]) == (72, 0)
    assert appended["rows"] == first["rows"] + 72
    assert appended["end"].startswith("2025-03-02T23:00:00")
    listed = await versions(deployed.http, name)
    assert [v["version"] for v in listed][:2] == [first["version"], appended["version"]]
    described = (await deployed.http.get(f"/ai/training/feature-sets/{name}")).json()
    assert described["version"] == appended["version"]

    job = await deployed.wait_finished(
        await deployed.submit({"feature_set": name, "target_variable": "demand", "horizon": 6})
    )
    assert (job["status"], job["feature_set_version"]) == ("completed", appended["version"]), job

    # A day in Parquet, correcting the last hour of the appended day.
    fix = meters("2025-03-02T23:00", 2)
    buffer = io.BytesIO()
    fix.to_parquet(buffer, index=False)
    replaced = await deployed.http.post(
        f"/ai/training/feature-sets/{name}/rows",
        params={"on_conflict": "replace"},
        content=buffer.getvalue(),
    )
    assert replaced.status_code == 201, replaced.text
    assert (replaced.json()["appended_rows"], replaced.json()["replaced_rows"]) == (6, 3)
    assert replaced.json()["rows"] == appended["rows"] + 3


async def test_rows_the_set_has_are_422_naming_the_first_and_store_nothing(
    deployed: Deployed,
) -> None:
    name, first = await uploaded(deployed.http, hours=48)
    before = stored(deployed, name)
    response = await deployed.http.post(
        f"/ai/training/feature-sets/{name}/rows", content=csv(meters("2025-01-02T12:00", 24))
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "body"]
    assert "series 'm0' already has a row at 2025-01-02T12:00:00+00:00" in error["msg"]
    assert "on_conflict=replace" in error["msg"]
    assert [v["version"] for v in await versions(deployed.http, name)] == [first["version"]]
    assert stored(deployed, name) == before


async def test_columns_that_do_not_fit_are_422_one_entry_each(deployed: Deployed) -> None:
    name, first = await uploaded(deployed.http, hours=48)
    before = stored(deployed, name)
    day = meters("2025-01-03", 24)
    wrong = day.drop(columns=["temp"]).assign(humidity=1.0)
    response = await deployed.http.post(
        f"/ai/training/feature-sets/{name}/rows", content=csv(wrong)
    )
    assert response.status_code == 422, response.text
    assert {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]} == {
        ("body", "temp"): "missing: the set has this column",
        ("body", "humidity"): "not a column of the set",
    }
    texts = await deployed.http.post(
        f"/ai/training/feature-sets/{name}/rows", content=csv(day.assign(temp="warm"))
    )
    assert texts.status_code == 422, texts.text
    assert "'temp' is not numeric" in texts.json()["detail"][0]["msg"]
    bad_option = await deployed.http.post(
        f"/ai/training/feature-sets/{name}/rows",
        params={"on_conflict": "overwrite"},
        content=csv(day),
    )
    assert bad_option.status_code == 422
    assert bad_option.json()["detail"][0]["loc"] == ["query", "on_conflict"]
    assert [v["version"] for v in await versions(deployed.http, name)] == [first["version"]]
    assert stored(deployed, name) == before


async def test_an_unknown_set_is_404(deployed: Deployed) -> None:
    response = await deployed.http.post(
        "/ai/training/feature-sets/no_such_set/rows", content=csv(meters("2025-01-01", 2))
    )
    assert response.status_code == 404, response.text
    assert not (deployed.data_dir / "features" / "no_such_set").exists()


async def test_appends_are_compacted_after_the_answer(deployed: Deployed) -> None:
    name, first = await uploaded(deployed.http, hours=24)
    for day in (2, 3):  # the second day's part breaks the tiers: 72 < 72 + 72
        response = await deployed.http.post(
            f"/ai/training/feature-sets/{name}/rows",
            content=csv(meters(f"2025-01-{day:02d}", 24)),
        )
        assert response.status_code == 201, response.text
    deadline = time.monotonic() + 30
    while (listed := await versions(deployed.http, name))[-1]["operation"] != "compaction":
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.2)
    assert [v["operation"] for v in listed] == ["import", "append", "append", "compaction"]
    assert listed[-1]["rows"] == listed[-2]["rows"] == first["rows"] * 3
    assert listed[-1]["previous_version"] == listed[-2]["version"]


LIMITS = UploadLimits(
    max_bytes=2**20, max_decompressed_bytes=8 * 2**20, max_columns=6, max_concurrent=2
)


@pytest.fixture
async def replica(deployed: Deployed) -> AsyncIterator[httpx.AsyncClient]:
    """A client of one replica of the app with ``LIMITS``, with the admin key."""
    config = dataclasses.replace(api_config(deployed.config), uploads=LIMITS)
    services = connect(config, serve.get_deployment_handle("ModelServer", APP_NAME))
    transport = httpx.ASGITransport(app=create_app(services))
    headers = {"Authorization": f"Bearer {deployed.admin_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://replica", headers=headers, timeout=60
    ) as client:
        yield client
    await services.store.database.close()


async def test_an_append_over_the_upload_limit_is_413(
    deployed: Deployed, replica: httpx.AsyncClient
) -> None:
    name, first = await uploaded(deployed.http, hours=48)
    before = stored(deployed, name)
    body = csv(meters("2025-01-03", 24 * 400))
    assert len(body) > LIMITS.max_bytes
    response = await replica.post(f"/ai/training/feature-sets/{name}/rows", content=body)
    assert response.status_code == 413, response.text
    assert "upload limit of 1 MiB" in response.json()["detail"]
    assert [v["version"] for v in await versions(replica, name)] == [first["version"]]
    assert stored(deployed, name) == before


def test_trainctl_features_append(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    name = f"cli_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "rows.csv"
    meters("2025-01-01", 24).to_csv(path, index=False)
    options = [f"--{k.replace('_', '-')}={v}" for k, v in UPLOAD.items()]
    assert cli.invoke(app, ["features", "import", name, str(path), *options]).exit_code == 0
    meters("2025-01-02", 24).to_csv(path, index=False)
    appended = cli.invoke(app, ["features", "append", name, str(path)])
    assert appended.exit_code == 0, appended.output
    assert f"appended 72 rows to {name} (replaced 0)" in appended.output
    assert "144 rows" in appended.output
    again = cli.invoke(app, ["features", "append", name, str(path)])
    assert again.exit_code == 1
    assert "series 'm0' already has a row at 2025-01-02T00:00:00+00:00" in again.output
    replaced = cli.invoke(app, ["features", "append", name, str(path), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert "appended 72 rows" in replaced.output
    assert "(replaced 72)" in replaced.output
