"""Faults the service survives: a running job nobody follows, an unreachable database,
an orchestrator killed while jobs run and wait, PostgreSQL restarted under load."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
import ray

from db.database import Database
from db.jobs import JobStore
from db.records import JobFilters, NewJob
from domain.errors import ServiceUnavailable, TooManyRequests, Unauthorized
from domain.events import JobEvent
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from serve_app.errors import error_response
from tests.serve_app.conftest import QUICK, TEN_WEEKS, Deployed, job_body


@pytest.mark.both_databases
async def test_a_running_job_nobody_follows_is_reclaimed_and_completes(
    deployed: Deployed,
) -> None:
    config = TrainingConfig(feature_set="forecast_basic", target_variable="load_kw", **QUICK)
    orphan = await deployed.store.create_job(
        NewJob(
            "orphans", ModelType.FORECAST, "m", "forecast_basic", 0, config.model_dump(mode="json")
        )
    )
    await deployed.store.transition(orphan.job_id, JobEvent.START)  # as a lost orchestrator left it

    job = await deployed.wait_finished(orphan.job_id, timeout=120)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    logs = (await deployed.http.get(f"/ai/training/jobs/{orphan.job_id}/logs")).json()["logs"]
    assert any("stuck-job watchdog" in line["message"] for line in logs)


async def test_an_unreachable_database_is_503_with_retry_after() -> None:
    store = JobStore(Database.from_url("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"))
    try:
        with pytest.raises(ServiceUnavailable) as unavailable:
            await store.get_job("any")
    finally:
        await store.database.close()
    response = error_response(unavailable.value)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0


def test_limits_and_auth_errors_carry_their_headers() -> None:
    busy = error_response(TooManyRequests("full", retry_after=12))
    assert (busy.status_code, busy.headers["retry-after"]) == (429, "12")
    refused = error_response(Unauthorized("no key"))
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")


#: A job of about half a second: ten trees on ten weeks of hourly data.
TINY = {**TEN_WEEKS, "hyperparameters": {"n_estimators": 10, "objective": "regression"}}
#: Enough jobs (about ten seconds of them) that each kill lands while some run and others wait.
SURVIVORS = 20


#: How the log line that ends a job begins: completed, failed in a stage, or out of attempts.
ENDINGS = ("completed;", "failed:", "interrupted ")


@pytest.mark.slow
@pytest.mark.both_databases
async def test_jobs_survive_three_orchestrator_kills(deployed: Deployed) -> None:
    job_ids = [await deployed.submit(TINY, tenant_id="survivors") for _ in range(SURVIVORS)]
    for _ in range(3):
        await asyncio.sleep(1.5)
        ray.kill(deployed.running.orchestrator, no_restart=False)

    jobs = [await deployed.wait_finished(job_id, timeout=300) for job_id in job_ids]
    assert all(j["status"] in ("completed", "failed") for j in jobs)
    completed = [j for j in jobs if j["status"] == "completed"]
    assert len(completed) >= SURVIVORS - 3, "only the interrupted jobs may run out of attempts"
    for job in jobs:
        models = await deployed.registry.of_job(job["job_id"])
        expected = [job["model_id"]] if job["status"] == "completed" else []
        assert [m.model_id for m in models] == expected
        lines = await deployed.store.tail_logs(job["job_id"], 1000)
        endings = [line for line in lines if line.message.startswith(ENDINGS)]
        assert len(endings) == 1, (job["job_id"], [line.message for line in lines])


def postgresql(action: str) -> None:
    """``pg_ctlcluster <version> main <action>`` on this machine's server."""
    [version] = [p.name for p in Path("/etc/postgresql").iterdir()]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.mark.slow
async def test_postgresql_restarted_under_load(deployed: Deployed) -> None:
    assert deployed.backend == "postgresql"
    if shutil.which("pg_ctlcluster") is None:
        pytest.skip("needs the machine's PostgreSQL cluster (pg_ctlcluster)")
    tenant = "outage"
    before = [await deployed.submit(TINY, tenant_id=tenant) for _ in range(8)]
    await deployed.wait_until(before[0], lambda j: j["status"] != "queued")
    try:
        await asyncio.to_thread(postgresql, "stop")
        read = await deployed.http.get(f"/ai/training/jobs/{before[0]}")
        submitted = await deployed.http.post(
            "/ai/training/jobs/start", json=job_body(TINY, tenant_id=tenant)
        )
        await asyncio.sleep(5)  # stages finish meanwhile; the orchestrator's writes wait
    finally:
        await asyncio.to_thread(postgresql, "start")

    for refused in (read, submitted):
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
    after = [await deployed.submit(TINY, tenant_id=tenant) for _ in range(4)]
    jobs = [await deployed.wait_finished(job_id, timeout=300) for job_id in before + after]
    errors = [j["error_message"] for j in jobs if j["error_message"]]
    assert [j["status"] for j in jobs] == ["completed"] * len(jobs), errors
    stored = await deployed.store.list_jobs(JobFilters(tenant_id=tenant), 1, 100)
    assert sorted(j.job_id for j in stored.items) == sorted(before + after), "none lost or extra"
    for job in jobs:
        models = await deployed.registry.of_job(job["job_id"])
        assert [m.model_id for m in models] == [job["model_id"]]
        lines = await deployed.store.tail_logs(job["job_id"], 1000)
        assert len([line for line in lines if line.message.startswith(ENDINGS)]) == 1
