"""Six one-CPU jobs at once on an autoscaling cluster, run in its own process by
``test_autoscaling`` (and by ``bench.autoscaling``): the service on Ray's autoscaling test
cluster (``tests.cluster.autoscaling_cluster``), a 2-CPU head and up to two 2-CPU workers.

It prints one JSON object of observations; the test asserts on them.
  jobs:     each job's status, attempts and model count; submits refused
  seconds:  from the submits to the last completion
  samples:  [seconds, worker nodes, /ai/training/stats] about twice a second, from the
            submits until the workers are gone again
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from actors.settings import OrchestratorSettings
from db.settings import DatabaseSettings
from pipeline.settings import PipelineSettings
from serve_app.service import ServiceConfig, bootstrap, stop
from serve_app.settings import ApiSettings
from tests.cluster.autoscaling_cluster import FakeAutoscalingCluster, alive_worker_nodes
from tests.network import free_port

JOBS = 6
TENANT = "autoscaling"
#: A few seconds of training on one CPU, so the six jobs overlap.
TRAINING = {
    "hyperparameters": {"n_estimators": 3000, "learning_rate": 0.005, "objective": "regression"},
    "early_stopping_rounds": 0,
    "quantiles": [],
}
#: How long the workers may take to come up, the jobs to finish, the workers to go.
DEADLINE_SECONDS = 300


def body(n: int) -> dict[str, Any]:
    return {
        "tenant_id": TENANT,
        "model_type": "forecast",
        "model_name": f"m{n}",
        "config": {"feature_set": "forecast_basic", "target_variable": "load_kw", **TRAINING},
    }


class Sampler(threading.Thread):
    """Records worker nodes and the service's stats about twice a second."""

    def __init__(self, api: str) -> None:
        super().__init__(daemon=True)
        self._api = api
        self._began = time.monotonic()
        self.samples: list[tuple[float, int, dict[str, Any]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self._api, timeout=30) as http:
            while not self.stopped.is_set():
                stats = http.get("/ai/training/stats").json()
                seconds = round(time.monotonic() - self._began, 1)
                self.samples.append((seconds, alive_worker_nodes(), stats))
                self.stopped.wait(0.5)

    def latest(self) -> tuple[float, int, dict[str, Any]]:
        return self.samples[-1]


async def submit_all(api: str) -> tuple[list[str], list[str]]:
    """Every job at once; (the accepted jobs' ids, the refusals' texts)."""
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        responses = await asyncio.gather(
            *(http.post("/ai/training/jobs/start", json=body(n)) for n in range(JOBS))
        )
    accepted = [r.json()["job_id"] for r in responses if r.status_code == 201]
    refused = [r.text for r in responses if r.status_code != 201]
    return accepted, refused


def finished(http: httpx.Client, job_ids: list[str]) -> list[dict[str, Any]] | None:
    jobs = [http.get(f"/ai/training/jobs/{j}").json() for j in job_ids]
    done = all(j["status"] in ("completed", "failed", "cancelled") for j in jobs)
    return jobs if done else None


def run(address: str, wait_for_scale_down: bool) -> dict[str, Any]:
    """Start the service on the cluster at ``address``, run the six jobs, stop it."""
    data_dir = Path(tempfile.mkdtemp(prefix="autoscaling-"))
    pipeline = PipelineSettings(data_dir=data_dir)
    config = ServiceConfig(
        database_url=DatabaseSettings(data_dir=data_dir).url,
        pipeline=pipeline,
        orchestrator=OrchestratorSettings(),
        api=ApiSettings(port=free_port()),
    )
    service = bootstrap(config, address)
    sampler = Sampler(service.api_url)
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        began = time.monotonic()
        sampler.start()
        accepted, out["refused"] = asyncio.run(submit_all(service.api_url))
        with httpx.Client(base_url=service.api_url, timeout=30) as http:
            while (jobs := finished(http, accepted)) is None:
                assert time.monotonic() < deadline, "the jobs did not finish in time"
                time.sleep(0.2)
            out["seconds"] = round(time.monotonic() - began, 1)
            models = http.get("/ai/models", params={"tenant_id": TENANT}).json()["models"]
        out["jobs"] = [
            {
                "status": j["status"],
                "attempts": j["attempts"],
                "error": j["error_message"],
                "models": sum(1 for m in models if m["job_id"] == j["job_id"]),
            }
            for j in jobs
        ]
        while wait_for_scale_down and time.monotonic() < deadline:
            _, workers, stats = sampler.latest()
            if workers == 0 and stats["total_capacity"] == 2:
                time.sleep(1)  # a last sample or two after the fall
                break
            time.sleep(0.5)
    finally:
        sampler.stopped.set()
        sampler.join()
        out["samples"] = sampler.samples
        stop(service)
    return out


def main() -> None:
    cluster = FakeAutoscalingCluster(head_cpus=2, worker_cpus=2, max_workers=2)
    address = cluster.start()
    try:
        out = run(address, wait_for_scale_down=True)
    finally:
        cluster.shutdown()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
