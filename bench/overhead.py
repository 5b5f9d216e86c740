"""What the service costs per job, against doing the same work without it.

In one run, on the same machine and data, time N small forecast trainings three ways:

  service     submitted over HTTP to the running service (Serve → orchestrator → Ray tasks)
  in-process  the same pipeline functions called one after another in this process
  ray-jobs    the same training submitted one at a time through the Ray Jobs API

and print the ratios. With ``--mlflow``, the service is timed again with its MLflow mirror
on (a local tracking server), alternating off and on, and the ratio of the two is printed
with how long after the last job the mirror had everything.

Usage: ``python -m bench.overhead [--jobs 20] [--skip-ray-jobs] [--mlflow]``.
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
from typing import Any

import httpx
import ray

from actors.settings import NAMESPACE, MlflowSettings, OrchestratorSettings
from bench.workload import bench_context, job_body
from db.settings import DatabaseSettings
from pipeline.graph.runner import run_in_process
from pipeline.settings import PipelineSettings
from serve_app.service import (
    RunningService,
    ServiceConfig,
    connect,
    prepare_storage,
    start,
    stop,
)
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


def time_service(jobs: int, data_dir: Path, mlflow: MlflowSettings | None = None) -> float:
    """Seconds for ``jobs`` jobs through a fresh service (with the mirror, if given)."""
    config = ServiceConfig(
        database_url=DatabaseSettings(data_dir=data_dir).url,
        pipeline=PipelineSettings(data_dir=data_dir),
        orchestrator=OrchestratorSettings(mlflow=mlflow or MlflowSettings(tracking_uri=None)),
        api=ApiSettings(port=API_PORT),
    )
    connect(None, num_cpus=2)
    service = start(config)
    if mlflow is not None:  # timed once it runs, as it does beside a long-running service
        ray.get(ray.get_actor(service.mirror_name, namespace=NAMESPACE).ready.remote())
    try:
        seconds = asyncio.run(_submit_and_wait(service.api_url, jobs))
        if mlflow is not None:
            print(f"  (the mirror had every job {_mirror_lag(service):.1f} s after the last one)")
        return seconds
    finally:
        stop(service)


def _mirror_lag(service: RunningService) -> float:
    """Seconds from now until the mirror's backlog is empty."""
    mirror: Any = ray.get_actor(service.mirror_name, namespace=NAMESPACE)
    started = time.perf_counter()
    while ray.get(mirror.catch_up.remote()) != 0:
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def time_mirror(jobs: int, rounds: int) -> tuple[list[float], list[float]]:
    """The service timed with the MLflow mirror off and on, alternating, each time on a
    new database (so the mirror has only the timed jobs to mirror)."""
    from tests.mlflow_server import MlflowServer  # a dev dependency: mlflow's server

    # The tracking server stands for one on another machine: it gets what CPU is left.
    server = MlflowServer(Path(tempfile.mkdtemp(prefix="bench-mlflow-")), niceness=19)
    server.start()
    off: list[float] = []
    on: list[float] = []
    try:
        settings = MlflowSettings(tracking_uri=server.uri)
        for _ in range(rounds):
            for times, mirror in ((off, None), (on, settings)):
                with tempfile.TemporaryDirectory(prefix="bench-overhead-") as temp:
                    data_dir = Path(temp)
                    _prepare(data_dir)
                    times.append(time_service(jobs, data_dir, mirror))
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
    return off, on


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


def _prepare(data_dir: Path) -> None:
    url = DatabaseSettings(data_dir=data_dir).url
    asyncio.run(prepare_storage(url, PipelineSettings(data_dir=data_dir)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--skip-ray-jobs", action="store_true")
    parser.add_argument("--mlflow", action="store_true", help="time the MLflow mirror's cost")
    parser.add_argument("--rounds", type=int, default=2, help="--mlflow: off/on pairs")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        _prepare(data_dir)
        run_in_process(bench_context("warm-up"), PipelineSettings(data_dir=data_dir))
        in_process = time_in_process(args.jobs, data_dir)
        service = time_service(args.jobs, data_dir)
        ray_jobs = None if args.skip_ray_jobs else time_ray_jobs(args.jobs, data_dir)
        mirror = time_mirror(args.jobs, args.rounds) if args.mlflow else None
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
    print(f"service / in-process = {service / in_process:.2f}  (goal <= 1.0)")
    if ray_jobs is not None:
        print(f"ray-jobs / service   = {ray_jobs / service:.1f}  (goal >= 5)")
    if mirror is not None:
        off, on = mirror
        print(f"  service, mirror off    : {', '.join(f'{t:.2f}' for t in off)} s")
        print(f"  service, mirror on     : {', '.join(f'{t:.2f}' for t in on)} s")
        ratio = (sum(on) / len(on)) / (sum(off) / len(off))
        print(f"mirror on / off = {ratio:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
