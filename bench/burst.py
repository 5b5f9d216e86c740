"""A burst: ``--jobs`` tiny jobs from ``--clients`` concurrent clients, with random
priorities, against a running service (local Ray with 2 CPUs, SQLite unless
``--database-url``, auth on). Waits for every job to end, then checks from the database:

  stored        every accepted job is there, and nothing else
  exactly once  each completed once: one start, one ending, attempt 1, one model
  priorities    no job started while a job of higher priority was already accepted
                (its 201 received) and still waiting: an inversion. The start time is
                stamped in the START transaction, a little after the dispatcher chose
                the job; ``--grace`` allows for that, and is 0 by default

Prints submit throughput, the time to drain the queue and the counts.
Usage: ``python -m bench.burst [--jobs 1000] [--clients 50] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from actors.settings import OrchestratorSettings
from bench.api_load import admin_key
from bench.workload import job_body
from db.database import Database
from db.jobs import JobStore
from db.records import JobFilters, JobRecord
from db.registry import ModelRegistry
from db.settings import DatabaseSettings
from domain.jobs import JobStatus
from pipeline.settings import PipelineSettings
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

API_PORT = 8793
TENANT = "burst"
PRIORITIES = ("urgent", "high", "normal", "low")
#: About a tenth of a second of training: ten trees on ten weeks of hourly data.
TINY = {
    "start_date": "2025-01-01T00:00:00Z",
    "end_date": "2025-03-15T00:00:00Z",
    "hyperparameters": {"n_estimators": 10},
}
ENDINGS = ("completed;", "failed:", "interrupted ")


@dataclass(frozen=True)
class Burst:
    accepted: dict[str, datetime]  # job id -> when its 201 was received
    refused: int
    submit_seconds: float
    drain_seconds: float


async def submit_burst(api_url: str, key: str, jobs: int, clients: int) -> Burst:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    accepted: dict[str, datetime] = {}
    refused = 0
    remaining = iter(range(jobs))
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, limits=limits, timeout=120
    ) as client:

        async def worker() -> None:
            nonlocal refused
            for _ in remaining:
                body = job_body() | {"tenant_id": TENANT, "priority": random.choice(PRIORITIES)}
                body["config"] = body["config"] | TINY
                response = await client.post("/ai/training/jobs/start", json=body)
                if response.status_code == 201:
                    accepted[response.json()["job_id"]] = datetime.now(UTC)
                else:
                    refused += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        submitted = time.perf_counter() - began
        while True:
            stats = (await client.get("/ai/training/stats")).json()
            if stats["queued_jobs"] == 0 and stats["active_jobs"] == 0:
                break
            await asyncio.sleep(0.5)
        return Burst(accepted, refused, submitted, time.perf_counter() - began)


async def audit(url: str, burst: Burst, grace: float) -> dict[str, int]:
    database = Database.from_url(url)
    store, registry = JobStore(database), ModelRegistry(database)
    try:
        stored: list[JobRecord] = []
        page = 1
        while batch := (await store.list_jobs(JobFilters(tenant_id=TENANT), page, 500)).items:
            stored.extend(batch)
            page += 1
        not_once = 0
        for job in stored:
            lines = await store.tail_logs(job.job_id, 1000)
            starts = sum(1 for line in lines if line.message == "started")
            endings = sum(1 for line in lines if line.message.startswith(ENDINGS))
            models = await registry.of_job(job.job_id)
            if (job.status, job.attempts, starts, endings, len(models)) != (
                JobStatus.COMPLETED,
                1,
                1,
                1,
                1,
            ):
                not_once += 1
    finally:
        await database.close()
    return {
        "stored": len(stored),
        "missing": len(set(burst.accepted) - {j.job_id for j in stored}),
        "extra": len({j.job_id for j in stored} - set(burst.accepted)),
        "not_exactly_once": not_once,
        "inversions": inversions(stored, burst.accepted, timedelta(seconds=grace)),
    }


def inversions(jobs: list[JobRecord], accepted: dict[str, datetime], grace: timedelta) -> int:
    """Starts of a job while one of higher priority, accepted more than ``grace`` earlier,
    was still waiting."""
    started = [j for j in jobs if j.started_at and j.job_id in accepted]
    count = 0
    for job in started:
        assert job.started_at is not None
        if any(
            other.priority > job.priority
            and accepted[other.job_id] + grace < job.started_at
            and other.started_at is not None
            and other.started_at > job.started_at
            for other in started
        ):
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--grace", type=float, default=0.0, help="seconds; see inversions")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    url = args.database_url or DatabaseSettings(data_dir=data_dir).url
    try:
        asyncio.run(prepare_storage(url, PipelineSettings(data_dir=data_dir)))
        key = asyncio.run(admin_key(url))
        config = ServiceConfig(
            database_url=url,
            pipeline=PipelineSettings(data_dir=data_dir),
            orchestrator=OrchestratorSettings(),
            api=ApiSettings(port=API_PORT, auth_enabled=True),
        )
        connect(None, num_cpus=2)
        running = start(config)
        try:
            burst = asyncio.run(submit_burst(running.api_url, key, args.jobs, args.clients))
        finally:
            stop(running)
        found = asyncio.run(audit(url, burst, args.grace))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    backend = url.split("+", 1)[0]
    print(f"{args.jobs} tiny jobs from {args.clients} clients, random priorities; {backend}")
    print(
        f"  accepted {len(burst.accepted)}, refused {burst.refused};"
        f" submitted in {burst.submit_seconds:.1f} s"
        f" ({len(burst.accepted) / burst.submit_seconds:.0f} jobs/s)"
    )
    print(
        f"  all ended after {burst.drain_seconds:.1f} s"
        f" ({len(burst.accepted) / burst.drain_seconds:.1f} jobs/s through training)"
    )
    print(
        f"  stored {found['stored']} (missing {found['missing']}, extra {found['extra']});"
        f" not exactly once {found['not_exactly_once']};"
        f" priority inversions {found['inversions']} (grace {args.grace} s)"
    )


if __name__ == "__main__":
    main()
