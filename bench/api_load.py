"""The API under load: submits, reads and lists against a filled database, side by side
with a no-op endpoint of the same Serve app as the floor.

The database is filled with ``--jobs`` finished jobs across ``--tenants`` tenants (written
straight through the store). Then ``--clients`` concurrent clients run, in one process:

  floor     GET /healthz (no database, no actor)
  get       GET /ai/training/jobs/{id} for random stored jobs
  list      GET /ai/training/jobs?tenant_id=..&status=..
  submit    POST /ai/training/jobs/start (throughput; the submitting tenant is paused,
            ``max_running: 0``, so its jobs queue and no training competes for the CPUs)

with authentication on, as a shared deployment runs. Prints p50/p99 per operation, their
ratios to the floor, submit throughput, the error count, and how much CPU the load
generator itself took (it shares the machine's two cores with the service). The clients
use aiohttp, which measured a tenth of httpx's client CPU per request (bench/README.md).
Usage: ``python -m bench.api_load [--jobs 10000] [--clients 32] [--requests 2000]
[--replicas 1] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert

from actors.admission import TenantLimits
from actors.settings import OrchestratorSettings
from bench.workload import job_body
from db.database import Database
from db.keys import ApiKeyStore
from db.models import TrainingJob
from db.settings import DatabaseSettings
from domain.auth import Role
from domain.clock import utcnow
from domain.jobs import JobStatus
from pipeline.settings import PipelineSettings
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

API_PORT = 8792
SUBMIT_TENANT = "load-submit"
STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class Measured:
    name: str
    latencies: list[float]
    seconds: float
    errors: int
    client_cpu_seconds: float

    def quantile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q * 100) - 1]

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def client_cores(self) -> float:
        """The load generator's CPU use, in cores."""
        return self.client_cpu_seconds / self.seconds


async def fill(url: str, jobs: int, tenants: int) -> list[str]:
    """Insert finished jobs in batches; returns their ids."""
    database = Database.from_url(url)
    now = utcnow()
    ids = [str(uuid.uuid4()) for _ in range(jobs)]
    rows: list[dict[str, Any]] = [
        {
            "job_id": job_id,
            "tenant_id": f"tenant-{n % tenants:02d}",
            "model_type": "forecast",
            "model_name": "load_forecast",
            "feature_set": "forecast_basic",
            "status": STATUSES[n % len(STATUSES)].value,
            "priority": 0,
            "progress": 1.0,
            "config": {"feature_set": "forecast_basic", "target_variable": "load_kw"},
            "attempts": 1,
            "created_at": now - timedelta(seconds=n),
            "updated_at": now,
            "completed_at": now,
        }
        for n, job_id in enumerate(ids)
    ]
    try:
        async with database.transaction() as session:
            for start_at in range(0, len(rows), 1000):
                await session.execute(insert(TrainingJob), rows[start_at : start_at + 1000])
    finally:
        await database.close()
    return ids


async def admin_key(url: str) -> str:
    database = Database.from_url(url)
    try:
        return (await ApiKeyStore(database).create("ops", Role.ADMIN, utcnow())).token
    finally:
        await database.close()


async def measure(
    name: str, requests: int, clients: int, call: Callable[[], Awaitable[int]]
) -> Measured:
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))

    async def worker() -> None:
        nonlocal errors
        for _ in remaining:
            began = time.perf_counter()
            status = await call()
            latencies.append(time.perf_counter() - began)
            if status >= 400:
                errors += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return Measured(name, latencies, seconds, errors, time.process_time() - cpu)


async def run_load(
    api_url: str, key: str, ids: list[str], tenants: int, clients: int, requests: int
) -> list[Measured]:
    headers = {"Authorization": f"Bearer {key}"}
    submit_body = job_body()
    submit_body["tenant_id"] = SUBMIT_TENANT
    async with aiohttp.ClientSession(
        base_url=api_url,
        headers=headers,
        connector=aiohttp.TCPConnector(limit=clients),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as session:

        async def request(method: str, path: str, **options: Any) -> int:
            async with session.request(method, path, **options) as response:
                await response.read()
                return response.status

        def list_params() -> dict[str, str]:
            tenant = f"tenant-{random.randrange(tenants):02d}"
            return {"tenant_id": tenant, "status": random.choice(STATUSES).value}

        for _ in range(50):  # warm connections and replicas
            await request("GET", "/healthz")
        operations: list[tuple[str, Callable[[], Awaitable[int]]]] = [
            ("floor", lambda: request("GET", "/healthz")),
            ("get", lambda: request("GET", f"/ai/training/jobs/{random.choice(ids)}")),
            ("list", lambda: request("GET", "/ai/training/jobs", params=list_params())),
            ("submit", lambda: request("POST", "/ai/training/jobs/start", json=submit_body)),
        ]
        return [await measure(n, requests, clients, call) for n, call in operations]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2_000, help="per operation")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--replicas", type=int, default=1, help="API ingress replicas")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    url = args.database_url or DatabaseSettings(data_dir=data_dir).url
    try:
        asyncio.run(prepare_storage(url, PipelineSettings(data_dir=data_dir)))
        ids = asyncio.run(fill(url, args.jobs, args.tenants))
        key = asyncio.run(admin_key(url))
        config = ServiceConfig(
            database_url=url,
            pipeline=PipelineSettings(data_dir=data_dir),
            orchestrator=OrchestratorSettings(
                tenant_limits={SUBMIT_TENANT: TenantLimits(max_running=0)}
            ),
            api=ApiSettings(port=API_PORT, auth_enabled=True, replicas=args.replicas),
        )
        connect(None, num_cpus=2)
        running = start(config)
        try:
            results = asyncio.run(
                run_load(running.api_url, key, ids, args.tenants, args.clients, args.requests)
            )
        finally:
            stop(running)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    backend = url.split("+", 1)[0]
    print(
        f"{args.jobs} jobs across {args.tenants} tenants in {backend}; {args.clients} clients, "
        f"{args.requests} requests per operation; {args.replicas} API replica(s); auth on; 2 CPUs"
    )
    floor = results[0]
    for result in results:
        print(
            f"  {result.name:<7} p50 {1000 * result.quantile(0.5):7.1f} ms"
            f" ({result.quantile(0.5) / floor.quantile(0.5):5.1f}x floor)"
            f"  p99 {1000 * result.quantile(0.99):7.1f} ms"
            f" ({result.quantile(0.99) / floor.quantile(0.99):5.1f}x floor)"
            f"  {result.per_second:7.1f} req/s  errors {result.errors}"
            f"  load generator {result.client_cores:.2f} cores"
        )
    by_name = {r.name: r for r in results}
    print(f"submit throughput {by_name['submit'].per_second:.0f} jobs/s (goal >= 200)")
    print(f"GET p99 {1000 * by_name['get'].quantile(0.99):.1f} ms (goal <= 50)")
    print(f"list p99 {1000 * by_name['list'].quantile(0.99):.1f} ms (goal <= 100)")
    print(f"errors {sum(r.errors for r in results)} (goal 0)")


if __name__ == "__main__":
    main()
