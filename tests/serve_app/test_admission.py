"""Admission control and idempotent submission on the deployed service, both databases."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.serve_app.conftest import LIMITED_TENANT, SLOW, Deployed, count_jobs, job_body

#: Limits, idempotency keys and concurrent submits rest on the database's transactions.
pytestmark = pytest.mark.both_databases

START = "/ai/training/jobs/start"


async def cancel_all(deployed: Deployed, job_ids: list[str]) -> None:
    for job_id in job_ids:
        await deployed.http.delete(f"/ai/training/jobs/{job_id}")


async def test_queue_limit_gives_429_and_queued_jobs_say_why_they_wait(
    deployed: Deployed,
) -> None:
    running = await deployed.submit(SLOW, tenant_id=LIMITED_TENANT)
    await deployed.wait_until(running, lambda j: j["status"] == "running")
    queued = [await deployed.submit(tenant_id=LIMITED_TENANT) for _ in range(2)]
    try:
        jobs = await count_jobs(deployed.store)
        refused = await deployed.http.post(START, json=job_body(tenant_id=LIMITED_TENANT))
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert "limit" in refused.json()["detail"]
        assert await count_jobs(deployed.store) == jobs, "a refused submit writes nothing"

        first, second = [await deployed.job(job_id) for job_id in queued]
        assert first["queue_position"] == 1
        assert second["queue_position"] == 2
        assert first["waiting_reason"] == "tenant limit of 1 running jobs reached"
        listed = await deployed.http.get("/ai/training/jobs", params={"tenant_id": LIMITED_TENANT})
        places = {
            j["job_id"]: (j["queue_position"], j["waiting_reason"]) for j in listed.json()["jobs"]
        }
        assert places == {
            running: (None, None),
            queued[0]: (1, first["waiting_reason"]),
            queued[1]: (2, second["waiting_reason"]),
        }, "the list says what each job's page does"
        other = await deployed.submit(tenant_id="tenant-unlimited", priority="high")
        waiting = await deployed.job(other)
        assert waiting["queue_position"] == 1, "the limited tenant's jobs do not hold it up"
        assert waiting["waiting_reason"] == "the operator's cap of 1 running jobs reached"
        queued.append(other)
        assert (await deployed.job(running))["queue_position"] is None
    finally:
        await cancel_all(deployed, [running, *queued])


async def test_equal_priority_jobs_alternate_between_tenants(deployed: Deployed) -> None:
    blocker = await deployed.submit(SLOW, tenant_id="blocker")
    await deployed.wait_until(blocker, lambda j: j["status"] == "running")
    a_jobs = [await deployed.submit(tenant_id="fair-a") for _ in range(3)]
    b_job = await deployed.submit(tenant_id="fair-b")
    assert (await deployed.job(b_job))["queue_position"] == 2
    async with deployed.client_for(await deployed.key("fair-b")) as own_key:
        seen = (await own_key.get(f"/ai/training/jobs/{b_job}")).json()
        listed = (await own_key.get("/ai/training/jobs")).json()["jobs"]
    assert seen["queue_position"] == 1, "a tenant's key: its place among its own jobs"
    assert [j["queue_position"] for j in listed if j["job_id"] == b_job] == [1]
    await deployed.http.delete(f"/ai/training/jobs/{blocker}")
    finished = [await deployed.wait_finished(job_id) for job_id in [*a_jobs, b_job]]
    assert all(j["status"] == "completed" for j in finished)
    order = [j["tenant_id"] for j in sorted(finished, key=lambda j: j["started_at"])]
    assert order == ["fair-a", "fair-b", "fair-a", "fair-a"]


async def test_idempotent_retries_make_one_job(deployed: Deployed) -> None:
    tenant = f"idem-{uuid.uuid4().hex[:6]}"
    body = job_body(SLOW, tenant_id=tenant)
    key = {"Idempotency-Key": f"req-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(deployed.http.post(START, json=body, headers=key) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses]
    job_ids = {r.json()["job_id"] for r in responses}
    assert len(job_ids) == 1
    listed = (await deployed.http.get("/ai/training/jobs", params={"tenant_id": tenant})).json()
    assert listed["total"] == 1
    try:
        changed = job_body({**SLOW, "horizon": 12}, tenant_id=tenant)
        conflict = await deployed.http.post(START, json=changed, headers=key)
        assert conflict.status_code == 409
        assert "different request" in conflict.json()["detail"]
        fresh = await deployed.http.post(
            START, json=body, headers={"Idempotency-Key": f"req-{uuid.uuid4()}"}
        )
        assert fresh.status_code == 201
        job_ids.add(fresh.json()["job_id"])
        empty = await deployed.http.post(START, json=body, headers={"Idempotency-Key": ""})
        assert empty.status_code == 422
        for services in ("schedule:s-1:2026-01-01T02:00:00+00:00", "policy:p-1:abc"):
            taken = await deployed.http.post(
                START, json=body, headers={"Idempotency-Key": services}
            )
            assert taken.status_code == 422, taken.text
            assert taken.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    finally:
        await cancel_all(deployed, sorted(job_ids))
    assert len(job_ids) == 2


async def test_concurrent_retries_do_not_pass_the_queue_limit(deployed: Deployed) -> None:
    running = await deployed.submit(SLOW, tenant_id=LIMITED_TENANT)
    await deployed.wait_until(running, lambda j: j["status"] == "running")
    cancelled: list[str] = []
    for _ in range(3):  # the queue holds two at a time
        pair = [await deployed.submit(tenant_id=LIMITED_TENANT) for _ in range(2)]
        await cancel_all(deployed, pair)
        cancelled += pair
    retried: list[str] = []
    try:
        responses = await asyncio.gather(
            *(deployed.http.post(f"/ai/training/jobs/{job_id}/retry") for job_id in cancelled)
        )
        retried = [r.json()["job_id"] for r in responses if r.status_code == 201]
        assert sorted(r.status_code for r in responses) == [201] * 2 + [429] * 4, [
            r.text for r in responses
        ]
        queued = await deployed.http.get(
            "/ai/training/jobs", params={"tenant_id": LIMITED_TENANT, "status": "queued"}
        )
        assert queued.json()["total"] == 2
    finally:
        await cancel_all(deployed, [running, *retried])
