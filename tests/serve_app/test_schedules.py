"""Cron schedules on the deployed service, both databases: the API, and firing with the
clock passed in, once per fire time, across an orchestrator restart."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import ray
from ray.exceptions import RayActorError

from tests.serve_app.conftest import SLOW, Deployed, job_body

API = "/ai/training/schedules"


def schedule_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"s-{uuid.uuid4().hex[:8]}",
        "cron": "*/15 * * * *",
        "timezone": "Europe/Berlin",
        "job": job_body(SLOW, tenant_id="tenant-cron"),
        "window": "P730D",  # the demo data ends in 2025; fires are in 2026
    }
    body.update(fields)
    return body


async def fire(deployed: Deployed, now: datetime) -> list[str]:
    """Fire due schedules as of ``now``, waiting out an orchestrator restart."""
    for _ in range(100):
        try:
            fired: list[str] = await deployed.running.orchestrator.fire_schedules.remote(now)
            return fired
        except RayActorError:
            await asyncio.sleep(0.2)
    raise AssertionError("the orchestrator did not come back")


async def test_create_list_edit_delete(deployed: Deployed) -> None:
    created = await deployed.http.post(API, json=schedule_body(enabled=False))
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert len(schedule["next_fires"]) == 3
    assert schedule["recent_job_ids"] == []
    assert schedule["window_seconds"] == 730 * 86_400
    url = f"{API}/{schedule['schedule_id']}"
    listed = (await deployed.http.get(API, params={"tenant_id": "tenant-cron"})).json()
    assert schedule["schedule_id"] in [s["schedule_id"] for s in listed["schedules"]]
    patched = await deployed.http.patch(url, json={"cron": "0 3 * * 1", "enabled": True})
    assert patched.status_code == 200
    assert (patched.json()["cron"], patched.json()["enabled"]) == ("0 3 * * 1", True)
    duplicate = await deployed.http.post(API, json=schedule_body(name=schedule["name"]))
    assert duplicate.status_code == 409
    assert (await deployed.http.delete(url)).status_code == 204
    assert (await deployed.http.get(url)).status_code == 404
    assert (await deployed.http.delete(url)).status_code == 404


async def test_bad_schedules_are_422_and_store_nothing(deployed: Deployed) -> None:
    before = len((await deployed.http.get(API)).json()["schedules"])
    cases = [
        (schedule_body(cron="61 * * * *"), ["body", "cron"]),
        (schedule_body(cron="every night"), ["body", "cron"]),
        (schedule_body(cron="0 0 30 2 *"), ["body", "cron"]),
        (schedule_body(timezone="Mars/Olympus"), ["body", "timezone"]),
        (schedule_body(window="PT5M"), ["body", "window"]),
        (schedule_body(concurrency_policy="queue"), ["body", "concurrency_policy"]),
        (
            schedule_body(job=job_body({"feature_set": "nope"}, tenant_id="tenant-cron")),
            ["body", "job", "config", "feature_set"],
        ),
    ]
    for body, loc in cases:
        response = await deployed.http.post(API, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"] == loc
    assert len((await deployed.http.get(API)).json()["schedules"]) == before
    created = (await deployed.http.post(API, json=schedule_body(enabled=False))).json()
    url = f"{API}/{created['schedule_id']}"
    assert (await deployed.http.patch(url, json={"cron": None})).status_code == 422
    assert (await deployed.http.patch(url, json={"colour": "red"})).status_code == 422
    assert (await deployed.http.patch(f"{API}/nope", json={"enabled": False})).status_code == 404
    moved = await deployed.http.patch(url, json={"job": job_body(tenant_id="tenant-other")})
    assert moved.status_code == 422, moved.text
    assert moved.json()["detail"][0]["loc"] == ["body", "job", "tenant_id"]
    assert (await deployed.http.get(url)).json()["job"]["tenant_id"] == "tenant-cron"
    await deployed.http.delete(url)


@pytest.mark.both_databases
async def test_fires_once_per_time_across_restarts_and_honours_forbid(
    deployed: Deployed,
) -> None:
    created = (await deployed.http.post(API, json=schedule_body())).json()
    url = f"{API}/{created['schedule_id']}"
    start = datetime.fromisoformat(created["created_at"])
    later = start + timedelta(hours=5)  # 20 fire times were missed; only the last one runs
    started: list[str] = []
    try:
        [job_id] = await fire(deployed, later)
        started.append(job_id)
        job = await deployed.job(job_id)
        fire_time = datetime.fromisoformat(job["fire_time"])
        assert fire_time <= later
        assert later - fire_time < timedelta(minutes=15)
        assert fire_time.minute % 15 == 0
        assert datetime.fromisoformat(job["config"]["end_date"]) == fire_time
        start_date = datetime.fromisoformat(job["config"]["start_date"])
        assert start_date == fire_time - timedelta(days=730)
        assert job["schedule_id"] == created["schedule_id"]

        assert await fire(deployed, later) == []
        ray.kill(deployed.running.orchestrator, no_restart=False)
        assert await fire(deployed, later) == [], "a restart never fires twice"
        await deployed.stats()  # the API reaches the restarted orchestrator again
        shown = (await deployed.http.get(url)).json()
        assert shown["recent_job_ids"] == [job_id]
        assert datetime.fromisoformat(shown["last_fire_at"]) == fire_time

        await deployed.wait_until(job_id, lambda j: j["status"] in ("queued", "running"))
        assert await fire(deployed, later + timedelta(minutes=15)) == [], "forbid: still running"
        await deployed.http.patch(url, json={"concurrency_policy": "allow"})
        allowed = await fire(deployed, later + timedelta(minutes=30))
        assert len(allowed) == 1
        started += allowed
        await deployed.http.patch(url, json={"enabled": False})
        assert await fire(deployed, later + timedelta(hours=1)) == []
    finally:
        for job_id in started:
            await deployed.http.delete(f"/ai/training/jobs/{job_id}")
        await deployed.http.delete(url)
