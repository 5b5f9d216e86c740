"""Bring the whole service up on a Ray cluster, and down again.

Order matters: the schema is migrated and the demo feature sets exist before the
orchestrator starts, and the orchestrator exists before the API accepts requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import ray
from ray import serve
from ray.actor import ActorHandle

from actors.client import OrchestratorClient
from actors.orchestrator import JobOrchestrator, start_orchestrator
from actors.settings import NAMESPACE, OrchestratorSettings
from db.engine import create_engine
from db.migrate import upgrade
from pipeline.demo import ensure_demo_feature_sets
from pipeline.feature_store import FeatureStore
from pipeline.settings import PipelineSettings
from serve_app.deployment import APP_NAME, ApiConfig, build
from serve_app.settings import ApiSettings

READY_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class ServiceConfig:
    database_url: str
    pipeline: PipelineSettings
    orchestrator: OrchestratorSettings
    api: ApiSettings


def api_config(config: ServiceConfig) -> ApiConfig:
    """What the API's replicas need to know of the service's configuration."""
    return ApiConfig(
        database_url=config.database_url,
        pipeline=config.pipeline,
        orchestrator_name=config.orchestrator.actor_name,
        max_upload_bytes=config.api.max_upload_mb * 2**20,
        max_body_bytes=config.api.max_body_mb * 2**20,
        model_cache_bytes=config.api.model_cache_mb * 2**20,
        auth_enabled=config.api.auth_enabled,
        replicas=config.api.replicas,
    )


@dataclass(frozen=True)
class RunningService:
    orchestrator: ActorHandle[JobOrchestrator]
    api_url: str
    dashboard_url: str | None
    mirror_name: str


async def prepare_storage(database_url: str, pipeline: PipelineSettings) -> list[str]:
    """Migrate the schema and create missing demo feature sets; returns the ones created."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return ensure_demo_feature_sets(FeatureStore(pipeline.features_root))


def connect(address: str | None, num_cpus: int | None = None) -> str | None:
    """Join the cluster at ``address`` ('auto': the one ``ray start`` left its address
    for), or with None start a local one of its own, never one Ray's address file or
    ``RAY_ADDRESS`` names (a dead cluster's address outlives it there); returns the
    dashboard URL."""
    context = ray.init(
        address=address or "local",
        namespace=NAMESPACE,
        num_cpus=num_cpus if address is None else None,
        include_dashboard=True if address is None else None,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
    )
    url = context.dashboard_url
    return f"http://{url}" if url and not url.startswith("http") else url


def start(config: ServiceConfig, dashboard_url: str | None = None) -> RunningService:
    """Start (or find) the orchestrator and deploy the API on the connected cluster."""
    orchestrator = start_orchestrator(config.database_url, config.pipeline, config.orchestrator)
    ready = OrchestratorClient(orchestrator).ref(JobOrchestrator.ready)
    ray.get(ready, timeout=READY_TIMEOUT_SECONDS)
    if config.orchestrator.mlflow.enabled:
        # Started here, not by the orchestrator, so its restarts never import MLflow.
        from actors.mirror import start_mirror  # MLflow's client is an optional extra

        start_mirror(config.database_url, config.orchestrator)
    serve.start(http_options={"host": config.api.host, "port": config.api.port})
    serve.run(build(api_config(config)), name=APP_NAME, route_prefix="/")
    api_url = f"http://{config.api.host}:{config.api.port}"
    return RunningService(orchestrator, api_url, dashboard_url, config.orchestrator.mirror_name)


def stop(service: RunningService) -> None:
    """Stop the API and the orchestrator; queued and running jobs resume at the next start."""
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.kill(service.orchestrator, no_restart=True)
    with contextlib.suppress(ValueError):  # no mirror: MLflow is off
        ray.kill(ray.get_actor(service.mirror_name, namespace=NAMESPACE), no_restart=True)
    ray.shutdown()


def bootstrap(config: ServiceConfig, address: str | None) -> RunningService:
    """Everything ``trainctl up`` does before it waits."""
    asyncio.run(prepare_storage(config.database_url, config.pipeline))
    dashboard_url = connect(address)
    return start(config, dashboard_url)
