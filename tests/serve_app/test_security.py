"""Attacks on a shared deployment: other tenants' data, forged and expired keys, SQL in
filters, oversized bodies and path traversal. Every attempt is refused and nothing changes."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from db.keys import ApiKeyStore
from domain.auth import Role
from domain.clock import utcnow
from pipeline.store.demo import load_series
from tests.serve_app.conftest import SLOW, Deployed, count_jobs, job_body

VICTIM = "victim"
ATTACKER = "attacker"


@dataclass(frozen=True)
class VictimWorld:
    """What tenant ``victim`` owns: a finished job, its experiment and model, a queued job,
    a private feature set and a schedule."""

    job_id: str
    queued_job_id: str
    experiment_id: str
    model_id: str
    model_name: str
    schedule_id: str
    feature_set: str


@pytest.fixture
def deployed(service: Deployed) -> Deployed:
    """The service as it is: the world below keeps a job running on purpose."""
    return service


@pytest.fixture(scope="module")
async def world(service: Deployed) -> AsyncIterator[VictimWorld]:
    await service.idle()
    http = service.http
    name = f"victim_{uuid.uuid4().hex[:6]}"
    feature_set = f"private_{uuid.uuid4().hex[:6]}"
    csv = io.BytesIO()
    load_series(seed=3, hours=24 * 60).to_csv(csv, index=False)
    uploaded = await http.put(
        f"/ai/training/feature-sets/{feature_set}",
        params={"timestamp_column": "timestamp", "target_column": "load_kw", "tenant_id": VICTIM},
        content=csv.getvalue(),
    )
    assert uploaded.status_code == 200, uploaded.text
    job_id = await service.submit({"promote_champion": True}, tenant_id=VICTIM, model_name=name)
    job = await service.wait_finished(job_id)
    assert job["status"] == "completed", job
    experiments = (await http.get("/ai/training/experiments", params={"job_id": job_id})).json()
    schedule = await http.post(
        "/ai/training/schedules",
        json={
            "name": f"nightly-{name}",
            "cron": "0 2 * * *",
            "job": job_body(tenant_id=VICTIM, model_name=name),
            "enabled": False,
        },
    )
    assert schedule.status_code == 201, schedule.text
    blocker = await service.submit(SLOW, tenant_id="blocker")
    queued = await service.submit(tenant_id=VICTIM, model_name=name)
    yield VictimWorld(
        job_id=job_id,
        queued_job_id=queued,
        experiment_id=experiments["experiments"][0]["experiment_id"],
        model_id=job["model_id"],
        model_name=name,
        schedule_id=schedule.json()["schedule_id"],
        feature_set=feature_set,
    )
    for leftover in (queued, blocker):
        await http.delete(f"/ai/training/jobs/{leftover}")


async def state_of(deployed: Deployed, world: VictimWorld) -> dict[str, Any]:
    """Everything an attack could change, read with the admin key."""
    http = deployed.http
    return {
        "jobs": await count_jobs(deployed.store),
        "job": (await http.get(f"/ai/training/jobs/{world.job_id}")).json()["status"],
        "queued": (await http.get(f"/ai/training/jobs/{world.queued_job_id}")).json()["status"],
        "model": (await http.get(f"/ai/models/{world.model_id}")).json()["aliases"],
        "schedule": (await http.get(f"/ai/training/schedules/{world.schedule_id}")).json(),
        "experiments": (await http.get("/ai/training/experiments")).json()["total"],
        "forecasts": (await http.get("/ai/models/forecasts")).json()["total"],
    }


def cross_tenant_requests(world: VictimWorld) -> list[tuple[str, str, dict[str, Any]]]:
    """Every way to touch one of the victim's resources by id."""
    alias = f"/ai/models/{VICTIM}/{world.model_name}"
    return [
        ("GET", f"/ai/training/jobs/{world.job_id}", {}),
        ("GET", f"/ai/training/jobs/{world.job_id}/logs", {}),
        ("DELETE", f"/ai/training/jobs/{world.queued_job_id}", {}),
        ("POST", f"/ai/training/jobs/{world.job_id}/retry", {}),
        ("GET", f"/ai/training/experiments/{world.experiment_id}", {}),
        ("GET", f"/ai/training/experiments/{world.experiment_id}/metrics", {}),
        (
            "POST",
            "/ai/training/experiments/compare",
            {"json": {"experiment_ids": [world.experiment_id, world.experiment_id + "x"]}},
        ),
        ("GET", f"/ai/models/{world.model_id}", {}),
        ("GET", f"{alias}@champion", {}),
        ("PUT", f"{alias}/aliases/staging", {"json": {"version": world.model_id.split(":")[2]}}),
        ("DELETE", f"{alias}/aliases/champion", {}),
        ("POST", f"/ai/models/{world.model_id}/predict", {"json": {"rows": [{"x": 1}]}}),
        ("POST", f"{alias}@champion/predict", {"json": {"rows": [{"x": 1}]}}),
        ("GET", f"/ai/training/schedules/{world.schedule_id}", {}),
        ("PATCH", f"/ai/training/schedules/{world.schedule_id}", {"json": {"enabled": True}}),
        ("DELETE", f"/ai/training/schedules/{world.schedule_id}", {}),
        ("GET", f"/ai/training/feature-sets/{world.feature_set}", {}),
    ]


async def test_other_tenants_resources_do_not_exist(deployed: Deployed, world: VictimWorld) -> None:
    before = await state_of(deployed, world)
    async with deployed.client_for(await deployed.key(ATTACKER, Role.MEMBER)) as attacker:
        for method, path, extra in cross_tenant_requests(world):
            response = await attacker.request(method, path, **extra)
            assert response.status_code == 404, (method, path, response.text)

        jobs = (await attacker.get("/ai/training/jobs")).json()
        assert all(j["tenant_id"] == ATTACKER for j in jobs["jobs"])
        for listing in ("/ai/training/jobs", "/ai/training/experiments", "/ai/models"):
            assert (await attacker.get(listing, params={"tenant_id": VICTIM})).status_code == 403
        experiments = (await attacker.get("/ai/training/experiments")).json()
        assert experiments["total"] == 0
        sets = (await attacker.get("/ai/training/feature-sets")).json()["feature_sets"]
        assert world.feature_set not in [s["name"] for s in sets]
        schedules = (await attacker.get("/ai/training/schedules")).json()["schedules"]
        assert schedules == []
        stats = (await attacker.get("/ai/training/stats")).json()
        assert (stats["active_jobs"], stats["queued_jobs"]) == (0, 0), "others' jobs are running"

        as_victim = await attacker.post("/ai/training/jobs/start", json=job_body(tenant_id=VICTIM))
        assert as_victim.status_code == 403
        on_their_set = await attacker.post(
            "/ai/training/jobs/start",
            json=job_body({"feature_set": world.feature_set}, tenant_id=ATTACKER),
        )
        assert on_their_set.status_code == 422
        assert (await attacker.post("/ai/training/maintenance/cleanup")).status_code == 403
    assert await state_of(deployed, world) == before


async def test_an_admin_reads_a_named_tenants_sets_and_no_one_else_may(
    deployed: Deployed, world: VictimWorld
) -> None:
    windows = {"windows": [{"start": "2024-01-10T00:00:00Z", "end": "2024-01-11T00:00:00Z"}]}
    base = f"/ai/training/feature-sets/{world.feature_set}"
    victim = {"tenant_id": VICTIM}
    stored = await deployed.http.put(f"{base}/anomaly-windows", params=victim, json=windows)
    assert stored.status_code == 200, stored.text
    reads: dict[str, Callable[[Any], bool]] = {
        base: lambda body: body["name"] == world.feature_set,
        f"{base}/versions": lambda body: len(body["feature_sets"]) == 1,
        f"{base}/anomaly-windows": lambda body: len(body["windows"]) == 1,
        "/ai/training/feature-sets": lambda body: (
            world.feature_set in [s["name"] for s in body["feature_sets"]]
        ),
    }
    for path, holds in reads.items():
        read = await deployed.http.get(path, params=victim)
        assert read.status_code == 200, (path, read.text)
        assert holds(read.json()), (path, read.text)
    async with deployed.client_for(await deployed.key(ATTACKER, Role.MEMBER)) as attacker:
        for path in reads:
            assert (await attacker.get(path, params=victim)).status_code == 403, path
    stored = await deployed.http.put(f"{base}/anomaly-windows", params=victim, json={"windows": []})
    assert stored.status_code == 200, stored.text


async def test_viewers_read_but_change_nothing(deployed: Deployed, world: VictimWorld) -> None:
    before = await state_of(deployed, world)
    async with deployed.client_for(await deployed.key(VICTIM, Role.VIEWER)) as viewer:
        assert (await viewer.get(f"/ai/training/jobs/{world.job_id}")).status_code == 200
        assert (await viewer.get(f"/ai/models/{world.model_id}")).status_code == 200
        sets = (await viewer.get("/ai/training/feature-sets")).json()["feature_sets"]
        assert world.feature_set in [s["name"] for s in sets]
        for method, path, extra in cross_tenant_requests(world):
            if method == "GET" or path.endswith("/predict"):
                continue
            response = await viewer.request(method, path, **extra)
            assert response.status_code in (403, 404), (method, path, response.text)
        submitted = await viewer.post("/ai/training/jobs/start", json=job_body(tenant_id=VICTIM))
        assert submitted.status_code == 403
        # Predicting reads; keeping the forecast (scored by monitoring later) writes.
        recent = load_series(seed=3, hours=24 * 60).tail(24 * 8)
        rows = [{**r, "timestamp": r["timestamp"].isoformat()} for r in recent.to_dict("records")]
        predict = f"/ai/models/{world.model_id}/predict"
        assert (await viewer.post(predict, json={"rows": rows})).status_code == 200
        logged = await viewer.post(predict, json={"rows": rows, "log": True})
        assert logged.status_code == 403, logged.text
    assert await state_of(deployed, world) == before


async def test_missing_forged_expired_and_revoked_keys_get_401(
    deployed: Deployed, world: VictimWorld
) -> None:
    before = await state_of(deployed, world)
    real = await deployed.key(VICTIM, Role.ADMIN)
    expired = await deployed.key(VICTIM, Role.ADMIN, expires_at=utcnow() - timedelta(seconds=1))
    revoked = await deployed.key(VICTIM, Role.ADMIN)
    await ApiKeyStore(deployed.store.database).revoke(revoked.split("_")[1], utcnow())
    forged = [
        None,
        "",
        real[:-2] + "xx",
        "trk_" + "0" * 16 + "_" + real.rsplit("_", 1)[1],
        "Bearer nonsense",
        "' OR '1'='1",
        expired,
        revoked,
    ]
    for token in forged:
        async with deployed.client_for(token) as client:
            for method, path, extra in cross_tenant_requests(world)[:4]:
                response = await client.request(method, path, **extra)
                assert response.status_code == 401, (token, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
            unknown = await client.get("/ai/training/jobs/does-not-exist")
            assert unknown.status_code == 401, "an unknown id answers the same as a known one"
            created = await client.post("/ai/training/jobs/start", json=job_body(tenant_id=VICTIM))
            assert created.status_code == 401
    async with deployed.client_for(None) as anonymous:
        assert (await anonymous.get("/healthz")).status_code == 200
    assert await state_of(deployed, world) == before


INJECTIONS = ["x' OR '1'='1", "x'; DROP TABLE ai_training_jobs; --", "%' OR 1=1 --", "\\'"]


@pytest.mark.both_databases
@pytest.mark.parametrize("value", INJECTIONS)
async def test_sql_in_every_filter_is_just_a_value(
    deployed: Deployed, world: VictimWorld, value: str
) -> None:
    before = await state_of(deployed, world)
    filters = {
        "/ai/training/jobs": ("tenant_id", "model_name"),
        "/ai/training/experiments": ("tenant_id", "job_id", "model_name"),
        "/ai/models": ("tenant_id", "model_name"),
        "/ai/training/schedules": ("tenant_id",),
    }
    for path, names in filters.items():
        for name in names:
            response = await deployed.http.get(path, params={name: value})
            assert response.status_code in (200, 422), (path, name, response.text)
            if response.status_code == 200:
                body = response.json()
                items = next(v for v in body.values() if isinstance(v, list))
                assert items == [], (path, name, body)
    ordered = await deployed.http.get("/ai/training/experiments", params={"order_by": value})
    assert ordered.status_code == 422
    assert (await deployed.http.get(f"/ai/training/jobs/{value}")).status_code in (404, 422)
    assert await state_of(deployed, world) == before


async def test_oversized_bodies_and_pages_are_refused(
    deployed: Deployed, world: VictimWorld
) -> None:
    before = await state_of(deployed, world)
    huge = job_body()
    huge["config"]["hyperparameters"] = {"objective": "x" * (9 * 2**20)}
    response = await deployed.http.post("/ai/training/jobs/start", json=huge)
    assert response.status_code == 413
    windows = {"windows": [{"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}]}
    windows["windows"] *= 150_000  # 9.4 MiB: only the set's file and appended rows go past 8
    labelled = await deployed.http.put(
        "/ai/training/feature-sets/forecast_basic/anomaly-windows", json=windows
    )
    assert labelled.status_code == 413, labelled.text[:200]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"experiment_ids": ["'
        for _ in range(9):
            yield b"x" * 2**20
        yield b'"]}'

    chunked = await deployed.http.post("/ai/training/experiments/compare", content=chunks())
    assert chunked.status_code == 413, chunked.text[:200]
    many_rows = {"rows": [{"load_kw": 1.0}] * 20_001}
    predicted = await deployed.http.post(f"/ai/models/{world.model_id}/predict", json=many_rows)
    assert predicted.status_code == 422
    for path in ("/ai/training/jobs", "/ai/training/experiments", "/ai/models"):
        for size in (0, 101, 10**9):
            page = await deployed.http.get(path, params={"page_size": size})
            assert page.status_code == 422, (path, size)
    assert await state_of(deployed, world) == before


@pytest.mark.parametrize(
    "name", ["..", "../etc", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "a/../../b", ".hidden", "_tenants"]
)
async def test_path_traversal_in_feature_set_names(deployed: Deployed, name: str) -> None:
    jobs = await count_jobs(deployed.store)
    got = await deployed.http.get(f"/ai/training/feature-sets/{name}")
    assert got.status_code in (404, 422), got.text
    put = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params={"timestamp_column": "t", "target_column": "y"},
        content=b"t,y\n2026-01-01,1\n",
    )
    assert put.status_code in (404, 405, 422), put.text
    submitted = await deployed.http.post(
        "/ai/training/jobs/start", json=job_body({"feature_set": name})
    )
    assert submitted.status_code == 422
    assert await count_jobs(deployed.store) == jobs
    root = Path(str(deployed.config.pipeline.features_root))
    escaped = await asyncio.to_thread(lambda: sorted(p.name for p in root.parent.iterdir()))
    assert "etc" not in escaped
