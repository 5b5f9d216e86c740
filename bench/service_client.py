"""The service over HTTP, as the benchmarks drive it: uploads, jobs run to their end, and
what a model reports (metrics, its test part's predictions)."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import datetime
from typing import Any

import httpx
import pandas as pd

from bench.forecast_data import ONE_SERIES, QUANTILES, BenchSet

TENANT = "bench"
POLL_SECONDS = 1.0
JOB_TIMEOUT = 3600


class Service:
    """The service over HTTP: uploads, jobs and their test predictions."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def upload(self, bench_set: BenchSet) -> None:
        """The set through the service's upload, which is where its series column is named
        (a job reads it from the set)."""
        body = bench_set.data.to_csv(index=False).encode()
        params = {"timestamp_column": "timestamp", "target_column": bench_set.target}
        if bench_set.series:
            params["series_column"] = bench_set.series
        response = await self.client.put(
            f"/ai/training/feature-sets/{bench_set.name}", params=params, content=body
        )
        response.raise_for_status()

    async def run(
        self, config: dict[str, Any], name: str, model_type: str = "forecast"
    ) -> tuple[dict[str, Any], float]:
        """A job run to its end: its record and its seconds from created to completed."""
        body = {"tenant_id": TENANT, "model_type": model_type, "model_name": name, "config": config}
        response = await self.client.post("/ai/training/jobs/start", json=body)
        response.raise_for_status()
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            job: dict[str, Any] = (await self.client.get(f"/ai/training/jobs/{job_id}")).json()
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']}")
            await asyncio.sleep(POLL_SECONDS)
        if job["status"] != "completed":
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error_message']}")
        seconds = (
            datetime.fromisoformat(job["completed_at"]) - datetime.fromisoformat(job["created_at"])
        ).total_seconds()
        return job, seconds

    async def log_lines(self, job_id: str, containing: str) -> list[str]:
        response = await self.client.get(f"/ai/training/jobs/{job_id}/logs", params={"tail": 1000})
        response.raise_for_status()
        return [e["message"] for e in response.json()["logs"] if containing in e["message"]]

    async def metrics(self, model_id: str) -> dict[str, float]:
        response = await self.client.get(f"/ai/models/{model_id}")
        response.raise_for_status()
        metrics: dict[str, float] = response.json()["metrics"]
        return metrics

    async def test_predictions(self, model_id: str) -> pd.DataFrame:
        """Every row of the model's test part (as CSV: the JSON answer is a page): its
        series id (``unique_id``, ``ONE_SERIES`` for a set of one series), timestamp
        (``ds``), actual, prediction and quantiles (``q0.1`` ...)."""
        response = await self.client.get(
            f"/ai/models/{model_id}/test-predictions", headers={"Accept": "text/csv"}
        )
        response.raise_for_status()
        rows = pd.read_csv(io.StringIO(response.text), dtype={"series": str})
        table = pd.DataFrame(
            {
                "unique_id": rows.get("series", ONE_SERIES),
                "ds": pd.to_datetime(rows["timestamp"], utc=True).dt.tz_localize(None),
                "actual": rows["actual"],
                "predicted": rows["predicted"],
            }
        )
        for q in QUANTILES:
            table[f"q{q:g}"] = rows[f"q{q:g}"]
        return table
