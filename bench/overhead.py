"""What the service costs per job, against doing the same work without it.

In one run, on the same machine and data, time N small forecast trainings three ways:

  service     submitted over HTTP to the running service (Serve → orchestrator → Ray tasks)
  in-process  the same pipeline functions called one after another in this process
  ray-jobs    the same training submitted one at a time through the Ray Jobs API

and print the ratios. Usage: ``python -m bench.overhead [--jobs 20] [--skip-ray-jobs]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import ray

from actors.settings import OrchestratorSettings
from bench.workload import bench_context, job_body
from db.settings import DatabaseSettings
from pipeline.graph import run_in_process
from pipeline.settings import PipelineSettings
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

API_PORT = 8790
RAY_JOBS_DASHBOARD_PORT = 8296
RAY_JOBS_GCS_PORT = 6390  # Ray's default, 6379, is Redis's on these machines
POLL_SECONDS = 0.25


def time_in_process(jobs: int, data_dir: Path) -> float:
    settings = PipelineSettings(data_dir=data_dir)
    started = time.perf_counter()
    for _ in range(jobs):
        run_in_process(bench_context(str(uuid.uuid4())), settings, num_threads=1)
    return time.perf_counter() - started


async def _submit_and_wait(api_url: str, jobs: int) -> float:
    """Seconds from the first submission to the last job's ``completed_at``."""
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        await client.post("/ai/training/jobs/start", json=job_body())
        await _wait_until_idle(client)
        started = datetime.now(UTC)
        responses = await asyncio.gather(
            *(client.post("/ai/training/jobs/start", json=job_body()) for _ in range(jobs))
        )
        ids = {r.json()["job_id"] for r in responses}
        await _wait_until_idle(client)
        listed = (
            await client.get("/ai/training/jobs", params={"tenant_id": "bench", "page_size": 100})
        ).json()["jobs"]
    finished = [j for j in listed if j["job_id"] in ids]
    if len(finished) != jobs or {j["status"] for j in finished} != {"completed"}:
        raise RuntimeError(f"not every benchmark job completed: {finished}")
    last = max(datetime.fromisoformat(j["completed_at"]) for j in finished)
    return (last - started).total_seconds()


async def _wait_until_idle(client: httpx.AsyncClient) -> None:
    """Poll one cheap endpoint a few times a second, so polling does not steal the CPUs."""
    while True:
        stats = (await client.get("/ai/training/stats")).json()
        if stats["active_jobs"] == 0 and stats["queued_jobs"] == 0:
            return
        await asyncio.sleep(POLL_SECONDS)


def time_service(jobs: int, data_dir: Path) -> float:
    config = ServiceConfig(
        database_url=DatabaseSettings(data_dir=data_dir).url,
        pipeline=PipelineSettings(data_dir=data_dir),
        orchestrator=OrchestratorSettings(),
        api=ApiSettings(port=API_PORT),
    )
    connect(None, num_cpus=2)
    service = start(config)
    try:
        return asyncio.run(_submit_and_wait(service.api_url, jobs))
    finally:
        stop(service)


def time_ray_jobs(jobs: int, data_dir: Path) -> float:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ray_bin = Path(sys.executable).parent / "ray"
    subprocess.run(
        [
            ray_bin,
            "start",
            "--head",
            f"--port={RAY_JOBS_GCS_PORT}",
            "--num-cpus=2",
            "--include-dashboard=true",
            f"--dashboard-port={RAY_JOBS_DASHBOARD_PORT}",
            "--disable-usage-stats",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    try:
        started = time.perf_counter()
        for _ in range(jobs):
            subprocess.run(
                [
                    ray_bin,
                    "job",
                    "submit",
                    f"--address=http://127.0.0.1:{RAY_JOBS_DASHBOARD_PORT}",
                    "--",
                    sys.executable,
                    "-m",
                    "bench.one_training",
                    "--data-dir",
                    str(data_dir),
                ],
                check=True,
                env=env,
                capture_output=True,
                cwd=Path(__file__).parents[1],
            )
        return time.perf_counter() - started
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--skip-ray-jobs", action="store_true")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        asyncio.run(
            prepare_storage(
                DatabaseSettings(data_dir=data_dir).url, PipelineSettings(data_dir=data_dir)
            )
        )
        run_in_process(bench_context("warm-up"), PipelineSettings(data_dir=data_dir))
        in_process = time_in_process(args.jobs, data_dir)
        service = time_service(args.jobs, data_dir)
        ray_jobs = None if args.skip_ray_jobs else time_ray_jobs(args.jobs, data_dir)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)

    n = args.jobs
    print(f"{n} small forecast trainings (forecast_basic, 17,520 hourly rows, 100 rounds), 2 CPUs")
    print(f"  in-process, sequential : {in_process:7.2f} s  ({in_process / n:.3f} s/job)")
    print(f"  service over HTTP      : {service:7.2f} s  ({service / n:.3f} s/job)")
    if ray_jobs is not None:
        print(f"  Ray Jobs API, serial   : {ray_jobs:7.2f} s  ({ray_jobs / n:.3f} s/job)")
    print(f"service / in-process = {service / in_process:.2f}  (goal <= 1.10)")
    if ray_jobs is not None:
        print(f"ray-jobs / service   = {ray_jobs / service:.1f}  (goal >= 5)")


if __name__ == "__main__":
    main()
