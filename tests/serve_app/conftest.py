"""The deployed service (orchestrator actor + Serve app) on each database backend.

It runs with authentication on, as a shared deployment would; ``Deployed.http`` sends an
admin key, and ``Deployed.client_for`` makes clients with other tenants' keys. The tenant
``tenant-limited`` has admission limits (1 running, 2 queued) for the admission tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from actors.admission import TenantLimits
from actors.settings import NAMESPACE, MlflowSettings, OrchestratorSettings
from db.database import Database
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.keys import ApiKeyStore
from db.records import JobFilters
from db.registry import ModelRegistry
from domain.auth import Role
from domain.clock import utcnow
from pipeline.settings import PipelineSettings
from serve_app.service import RunningService, ServiceConfig, prepare_storage, start
from serve_app.settings import ApiSettings
from tests.databases import BACKENDS, fresh_database
from tests.mlflow_server import MlflowServer

PORT = 8765
FINISHED = {"completed", "failed", "cancelled"}


LIMITED_TENANT = "tenant-limited"


@dataclass
class Deployed:
    backend: str
    config: ServiceConfig
    running: RunningService
    store: JobStore
    http: httpx.AsyncClient
    admin_key: str

    async def key(
        self, tenant_id: str, role: Role = Role.MEMBER, expires_at: datetime | None = None
    ) -> str:
        """A new API key for ``tenant_id``."""
        keys = ApiKeyStore(self.store.database)
        return (await keys.create(tenant_id, role, utcnow(), expires_at)).token

    @property
    def experiments(self) -> ExperimentCatalog:
        return ExperimentCatalog(self.store.database)

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.store.database)

    def client_for(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.running.api_url, headers=headers, timeout=30)

    @property
    def data_dir(self) -> Path:
        return self.config.pipeline.data_dir

    async def submit(self, config: dict[str, Any] | None = None, **fields: Any) -> str:
        body = job_body(config, **fields)
        response = await self.http.post("/ai/training/jobs/start", json=body)
        assert response.status_code == 201, response.text
        job_id: str = response.json()["job_id"]
        return job_id

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/ai/training/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    async def wait_until(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> dict[str, Any]:
        """Poll the job until ``done``, waiting out the 503 ("try again shortly") the API
        gives while a killed orchestrator restarts."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.http.get(f"/ai/training/jobs/{job_id}")
            if response.status_code == 503:
                assert time.monotonic() < deadline, response.text
                await asyncio.sleep(0.2)
                continue
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if done(job):
                return job
            assert time.monotonic() < deadline, f"timed out; job is {job['status']}: {job}"
            await asyncio.sleep(0.1)

    async def wait_finished(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        return await self.wait_until(job_id, lambda j: j["status"] in FINISHED, timeout)

    async def stats(self, timeout: float = 60) -> dict[str, Any]:
        """``/ai/training/stats``, waiting out the 503 ("try again shortly") the API gives
        while a killed orchestrator restarts."""
        deadline = time.monotonic() + timeout
        while (response := await self.http.get("/ai/training/stats")).status_code == 503:
            assert time.monotonic() < deadline, response.text
            await asyncio.sleep(0.2)
        assert response.status_code == 200, response.text
        stats: dict[str, Any] = response.json()
        return stats

    async def idle(self) -> None:
        """Wait until nothing runs or waits, so a test starts on an empty queue."""
        deadline = time.monotonic() + 120
        while True:
            stats = await self.stats()
            if stats["active_jobs"] == 0 and stats["queued_jobs"] == 0:
                return
            assert time.monotonic() < deadline, stats
            await asyncio.sleep(0.1)


#: Most tests need a real training, not the best one: one booster of 30 rounds and no
#: quantile boosters, where the defaults train eight boosters of up to 1000 rounds. A test
#: of the defaults gives ``hyperparameters`` (``{}``) and ``quantiles`` of its own.
QUICK: dict[str, Any] = {
    "hyperparameters": {"n_estimators": 30, "learning_rate": 0.2, "objective": "regression"},
    "quantiles": [],
}


#: Ten weeks of the demo set's two years, for jobs whose data size does not matter: a
#: search's many trials, many jobs at once.
TEN_WEEKS = {"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-03-15T00:00:00Z"}


def job_body(config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": "tenant-a",
        "model_type": "forecast",
        "model_name": "load_forecast",
        "config": {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            **QUICK,
            **(config or {}),
        },
        "priority": "normal",
    }
    body.update(fields)
    return body


#: A job that trains long enough to be observed while running (no early stopping).
SLOW = {
    "hyperparameters": {"n_estimators": 200_000, "learning_rate": 0.001},
    "early_stopping_rounds": 0,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The API's tests run on PostgreSQL, production's database; those whose behaviour
    depends on the database (marked ``both_databases``) on SQLite too."""
    if "service" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_databases") is not None
        backends = BACKENDS if both else ("postgresql",)
        metafunc.parametrize("backend", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """The database the deployed service runs on (see ``pytest_generate_tests``)."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
async def service(
    backend: str,
    ray_cluster: None,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployed]:
    data_dir = tmp_path_factory.mktemp(f"service-{backend}")
    async with fresh_database(backend, data_dir, migrated=True) as url:
        pipeline = PipelineSettings(data_dir=data_dir)
        await prepare_storage(url, pipeline)
        config = ServiceConfig(
            database_url=url,
            pipeline=pipeline,
            orchestrator=OrchestratorSettings(
                max_concurrent_jobs=1,
                max_attempts=3,
                actor_name=f"orchestrator-test-{backend}",
                tenant_limits={LIMITED_TENANT: TenantLimits(max_running=1, max_queued=2)},
                schedule_poll_seconds=3600,  # tests fire schedules with their own clock
                monitor_seconds=3600,  # and score forecasts when they say
                stuck_job_seconds=3,
                mlflow=MlflowSettings(
                    tracking_uri=mlflow_server.uri,
                    experiment_prefix=f"{backend}-",
                    poll_seconds=1,
                    request_timeout_seconds=5,
                ),
            ),
            api=ApiSettings(port=PORT, auth_enabled=True),
        )
        running = await asyncio.to_thread(start, config)
        store = JobStore(Database.from_url(url))
        admin = await ApiKeyStore(store.database).create("ops", Role.ADMIN, utcnow())
        headers = {"Authorization": f"Bearer {admin.token}"}
        async with httpx.AsyncClient(base_url=running.api_url, headers=headers, timeout=30) as http:
            yield Deployed(backend, config, running, store, http, admin.token)
        ray.kill(running.orchestrator, no_restart=True)
        ray.kill(ray.get_actor(running.mirror_name, namespace=NAMESPACE), no_restart=True)
        await store.database.close()


@pytest.fixture
async def deployed(service: Deployed) -> Deployed:
    """The service, with no job left running by an earlier test."""
    await service.idle()
    return service


async def count_jobs(store: JobStore) -> int:
    return (await store.list_jobs(JobFilters(), 1, 1)).total
