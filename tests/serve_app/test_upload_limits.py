"""Uploads are bounded: the body's size and the table's once decompressed (413), its
columns (422), and how many one API replica imports at once (503 with Retry-After). A
refused upload stores nothing.

The limits here are small ones, on a replica of the app built like the deployed one (its
database, feature store and model server) and called in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ray import serve

from pipeline.store.demo import load_series
from serve_app.app import create_app
from serve_app.deployment import APP_NAME, connect
from serve_app.service import api_config, service_config
from serve_app.uploads import UploadLimits
from tests.serve_app.conftest import Deployed

LIMITS = UploadLimits(
    max_bytes=2**20, max_decompressed_bytes=8 * 2**20, max_columns=6, max_concurrent=2
)
PARAMS = {"timestamp_column": "timestamp", "target_column": "load_kw"}


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


def csv_of(hours: int) -> bytes:
    return load_series(seed=1, hours=hours).to_csv(index=False).encode()


def stored(deployed: Deployed, name: str) -> list[str]:
    """Every file of feature set ``name`` on disk."""
    root = deployed.data_dir / "features" / name
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


async def refused_and_nothing_stored(
    deployed: Deployed, client: httpx.AsyncClient, name: str, response: httpx.Response
) -> None:
    assert (await client.get(f"/ai/training/feature-sets/{name}")).status_code == 404
    assert stored(deployed, name) == [], response.text


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def test_a_body_over_the_upload_limit_is_413_naming_it(
    deployed: Deployed, replica: httpx.AsyncClient
) -> None:
    body = csv_of(24 * 1200)
    assert len(body) > LIMITS.max_bytes
    name = unique("big")
    declared = await replica.put(f"/ai/training/feature-sets/{name}", params=PARAMS, content=body)
    assert declared.status_code == 413
    assert "upload limit of 1 MiB" in declared.json()["detail"]
    await refused_and_nothing_stored(deployed, replica, name, declared)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    streamed = await replica.put(
        f"/ai/training/feature-sets/{name}", params=PARAMS, content=chunked()
    )
    assert streamed.status_code == 413
    await refused_and_nothing_stored(deployed, replica, name, streamed)


async def test_a_small_file_that_decompresses_past_the_limit_is_413(
    deployed: Deployed, replica: httpx.AsyncClient
) -> None:
    rows = 600_000
    table = pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=rows, freq="min", tz="UTC"),
            "load_kw": np.ones(rows),
            "flat": np.zeros(rows),
        }
    )
    buffer = io.BytesIO()  # run-length and delta encoded: even the footer's sizes are small
    pq.write_table(
        pa.Table.from_pandas(table, preserve_index=False),
        buffer,
        use_dictionary=["load_kw", "flat"],
        column_encoding={"timestamp": "DELTA_BINARY_PACKED"},
        compression="zstd",
    )
    assert len(buffer.getvalue()) < 2**16  # 64 KiB that unpack into 14 MB
    assert 3 * 8 * rows > LIMITS.max_decompressed_bytes
    name = unique("bomb")
    response = await replica.put(
        f"/ai/training/feature-sets/{name}", params=PARAMS, content=buffer.getvalue()
    )
    assert response.status_code == 413
    assert "8 MiB once decompressed" in response.json()["detail"]
    await refused_and_nothing_stored(deployed, replica, name, response)


async def test_more_columns_than_the_limit_is_422_naming_it(
    deployed: Deployed, replica: httpx.AsyncClient
) -> None:
    table = load_series(seed=1, hours=48)
    for index in range(5):
        table[f"extra_{index}"] = float(index)
    name = unique("wide")
    for content in (table.to_csv(index=False).encode(), parquet_bytes(table)):
        response = await replica.put(
            f"/ai/training/feature-sets/{name}", params=PARAMS, content=content
        )
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "body"]
        assert "9 columns, more than the limit of 6" in error["msg"]
        await refused_and_nothing_stored(deployed, replica, name, response)


def parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


async def test_uploads_beyond_the_replicas_limit_are_503_with_retry_after(
    deployed: Deployed, replica: httpx.AsyncClient
) -> None:
    body = csv_of(48)
    release = asyncio.Event()
    reading: list[asyncio.Event] = [asyncio.Event() for _ in range(LIMITS.max_concurrent)]

    def held(started: asyncio.Event) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            yield body[:100]
            started.set()  # the route reads the body only once it holds a slot
            await release.wait()
            yield body[100:]

        return chunks()

    names = [unique("held") for _ in reading]
    uploads = [
        asyncio.create_task(
            replica.put(f"/ai/training/feature-sets/{name}", params=PARAMS, content=held(started))
        )
        for name, started in zip(names, reading, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in reading)), 30)

    name = unique("refused")
    refused = await replica.put(f"/ai/training/feature-sets/{name}", params=PARAMS, content=body)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit()
    assert "retry" in refused.json()["detail"]
    await refused_and_nothing_stored(deployed, replica, name, refused)

    release.set()
    assert [r.status_code for r in await asyncio.gather(*uploads)] == [200, 200]
    again = await replica.put(f"/ai/training/feature-sets/{name}", params=PARAMS, content=body)
    assert again.status_code == 200, again.text  # the slots were given back


def test_the_limits_are_settings_of_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINING_MAX_UPLOAD_MB", "3")
    monkeypatch.setenv("TRAINING_MAX_UPLOAD_DECOMPRESSED_MB", "5")
    monkeypatch.setenv("TRAINING_MAX_UPLOAD_COLUMNS", "7")
    monkeypatch.setenv("TRAINING_MAX_CONCURRENT_UPLOADS", "9")
    config = api_config(service_config({"data_dir": tmp_path}))
    assert config.uploads == UploadLimits(
        max_bytes=3 * 2**20, max_decompressed_bytes=5 * 2**20, max_columns=7, max_concurrent=9
    )
