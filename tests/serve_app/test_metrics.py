"""Prometheus metrics at /metrics, and the same metrics exported through Ray's."""

from __future__ import annotations

import asyncio
import time

import httpx
import ray
from prometheus_client.parser import text_string_to_metric_families

from domain.auth import Role
from tests.serve_app.conftest import SLOW, Deployed


async def samples(deployed: Deployed) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await deployed.http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def test_metrics_follow_jobs_through_the_queue(deployed: Deployed) -> None:
    before = await samples(deployed)
    finished = ("training_jobs_finished_total", (("status", "completed"),))
    trained = ("training_stage_duration_seconds_count", (("stage", "train"),))
    waited = ("training_queue_wait_seconds_count", ())

    job = await deployed.wait_finished(await deployed.submit(tenant_id="metered"))
    assert job["status"] == "completed"
    after = await samples(deployed)
    assert after[finished] == before.get(finished, 0) + 1
    assert after[trained] == before.get(trained, 0) + 1
    assert after[waited] == before.get(waited, 0) + 1

    blocker = await deployed.submit(SLOW, tenant_id="metered")
    await deployed.wait_until(blocker, lambda j: j["status"] == "running")
    queued = await deployed.submit(tenant_id="metered", priority="high")
    try:
        now = await samples(deployed)
        assert now[("training_running_jobs", ())] == 1
        depth = ("training_queue_depth", (("priority", "high"), ("tenant", "metered")))
        assert now[depth] == 1
    finally:
        for job_id in (queued, blocker):
            await deployed.http.delete(f"/ai/training/jobs/{job_id}")
    drained = await samples(deployed)
    assert drained[depth] == 0
    cancelled = ("training_jobs_finished_total", (("status", "cancelled"),))
    assert drained[cancelled] >= before.get(cancelled, 0) + 1

    async with deployed.client_for(await deployed.key("metered", Role.MEMBER)) as member:
        assert (await member.get("/metrics")).status_code == 403


async def test_the_same_metrics_reach_rays_prometheus_endpoint(deployed: Deployed) -> None:
    await deployed.wait_finished(await deployed.submit(tenant_id="metered"))
    node = ray._private.worker.global_worker.node
    assert node is not None
    url = f"http://127.0.0.1:{node.metrics_export_port}/metrics"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            text = (await client.get(url)).text
            if "training_jobs_finished" in text and "training_stage_duration_seconds" in text:
                break
            assert time.monotonic() < deadline, "Ray never exported the training metrics"
            await asyncio.sleep(1)
