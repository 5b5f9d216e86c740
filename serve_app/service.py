"""Bring the whole service up on a Ray cluster, and down again.

The Serve application (``deploy/serve_config.yaml``, built by ``build_app``) brings up
what it needs itself: its ``Supervisor`` migrates the schema, ensures the operator's admin
key, creates the demo feature sets and then starts (or finds) the orchestrator, so the same
config runs under ``trainctl up``, in the tests and on KubeRay. Order matters: the schema
is migrated, the admin key and the demo feature sets exist before the orchestrator starts,
and ``serve.run`` returns once the orchestrator is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from pydantic import SecretStr
from ray import serve
from ray.actor import ActorHandle
from ray.serve.deployment import Application

from actors.client import OrchestratorClient
from actors.orchestrator import JobOrchestrator
from actors.settings import NAMESPACE, OrchestratorSettings
from actors.start import HEAD_NODE_RESOURCE, start_orchestrator
from db.database import Database
from db.keys import ApiKeyStore
from db.settings import DATABASE_SETTINGS, DatabaseSettings
from domain.auth import Role
from domain.clock import utcnow
from pipeline.settings import PipelineSettings
from pipeline.store.demo import ensure_demo_feature_sets
from pipeline.store.feature_store import FeatureStore
from serve_app.deployment import ApiConfig, build
from serve_app.serve_config import SERVE_CONFIG, application, load_application
from serve_app.settings import AdminKeySettings, ApiSettings
from serve_app.uploads import UploadLimits

READY_TIMEOUT_SECONDS = 60
#: The tenant of the operator's admin key (an admin acts for every tenant).
ADMIN_KEY_TENANT = "default"
ADMIN_KEY_NAME = "operator's admin key (TRAINING_ADMIN_KEY_FILE)"


@dataclass(frozen=True)
class ServiceConfig:
    database_url: str = field(repr=False)  # holds the password
    pipeline: PipelineSettings
    orchestrator: OrchestratorSettings
    api: ApiSettings
    admin_key: SecretStr | None = None


def service_config(settings: Mapping[str, Any]) -> ServiceConfig:
    """The service's settings: ``settings`` by name (``port``, ``database_url``, ...),
    the rest, and the operator's admin key, from the environment (``TRAINING_*``).

    Raises:
        pydantic.ValidationError: a setting is invalid (never showing the database URL).
        ValueError: the admin key is set but unreadable or malformed.
    """
    # Only the database's settings see its URL: another's error would quote its input.
    others = {name: value for name, value in settings.items() if name not in DATABASE_SETTINGS}
    return ServiceConfig(
        database_url=DatabaseSettings(**settings).url,
        pipeline=PipelineSettings(**others),
        orchestrator=OrchestratorSettings(**others),
        api=ApiSettings(**others),
        admin_key=AdminKeySettings().key(),
    )


def settings_of(config: ServiceConfig) -> dict[str, Any]:
    """Every setting of ``config`` by name: ``service_config`` of them gives it back (the
    database URL as resolved, whether it came from a variable or a file)."""
    parts = (config.pipeline, config.orchestrator, config.api)
    fields = {name: getattr(part, name) for part in parts for name in type(part).model_fields}
    return {**fields, "database_url": config.database_url, "database_url_file": None}


def api_config(config: ServiceConfig) -> ApiConfig:
    """What the API's replicas need to know of the service's configuration."""
    return ApiConfig(
        database_url=config.database_url,
        pipeline=config.pipeline,
        orchestrator_name=config.orchestrator.actor_name,
        uploads=UploadLimits(
            max_bytes=config.api.max_upload_mb * 2**20,
            max_decompressed_bytes=config.api.max_upload_decompressed_mb * 2**20,
            max_columns=config.api.max_upload_columns,
            max_concurrent=config.api.max_concurrent_uploads,
        ),
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


async def prepare_storage(
    database_url: str, pipeline: PipelineSettings, admin_key: SecretStr | None = None
) -> list[str]:
    """Migrate the schema, ensure the operator's admin key (if given) and create missing
    demo feature sets; returns the ones created.

    Raises:
        ServiceUnavailable: the database cannot be reached.
        Conflict: the admin key's id exists with another secret or role, or was revoked.
    """
    database = Database.from_url(database_url)
    try:
        await database.migrate()
        if admin_key is not None:
            await ApiKeyStore(database).ensure(
                admin_key.get_secret_value(), ADMIN_KEY_TENANT, Role.ADMIN, utcnow(), ADMIN_KEY_NAME
            )
    finally:
        await database.close()
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


@serve.deployment(
    ray_actor_options={"num_cpus": 0, "resources": {HEAD_NODE_RESOURCE: 0.001}},
    max_ongoing_requests=1,
)
class Supervisor:
    """The application's bring-up, run by Serve wherever the config is deployed: on the
    head node, where the orchestrator runs and reads the storage it prepares."""

    # Serve awaits an async constructor; the replica is ready once the orchestrator is.
    async def __init__(self, config: ServiceConfig) -> None:  # type: ignore[misc]
        await prepare_storage(config.database_url, config.pipeline, config.admin_key)
        orchestrator = start_orchestrator(config.database_url, config.pipeline, config.orchestrator)
        ready = OrchestratorClient(orchestrator).ref(JobOrchestrator.ready)
        await asyncio.wait_for(ready, READY_TIMEOUT_SECONDS)
        if config.orchestrator.mlflow.enabled:
            # Started here, not by the orchestrator, so its restarts never import MLflow.
            from actors.mirror import start_mirror  # MLflow's client is an optional extra

            start_mirror(config.database_url, config.orchestrator)

    async def ready(self) -> None:
        """Returns once the bring-up is done: Serve routes calls only to a constructed
        replica. The API's replicas wait on it before they take requests."""


def build_app(args: dict[str, Any]) -> Application:
    """Ray Serve's application builder (the Serve config's ``import_path``): the API, the
    model server and the supervisor, from the settings ``args`` gives by name over the
    environment's."""
    config = service_config(args)
    return build(api_config(config), Supervisor.bind(config))  # type: ignore[attr-defined]


def start(
    config: ServiceConfig, dashboard_url: str | None = None, serve_config: Path = SERVE_CONFIG
) -> RunningService:
    """Run the Serve config's application with ``config`` on the connected cluster: it
    starts (or finds) the orchestrator, which is ready when this returns."""
    app = load_application(serve_config)
    serve.start(http_options={"host": config.api.host, "port": config.api.port})
    serve.run(application(app, settings_of(config)), name=app.name, route_prefix=app.route_prefix)
    orchestrator = ray.get_actor(config.orchestrator.actor_name, namespace=NAMESPACE)
    api_url = f"http://{config.api.host}:{config.api.port}"
    return RunningService(orchestrator, api_url, dashboard_url, config.orchestrator.mirror_name)


def stop(service: RunningService) -> None:
    """Stop the API and the orchestrator; queued and running jobs resume at the next start."""
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.kill(service.orchestrator, no_restart=True)
    with contextlib.suppress(ValueError):  # no mirror: MLflow is off
        ray.kill(ray.get_actor(service.mirror_name, namespace=NAMESPACE), no_restart=True)
    ray.shutdown()


def abandon(config: ServiceConfig) -> None:
    """Stop what a start cut short (Ctrl-C while starting) had started of the API and the
    orchestrator, as ``stop`` would: on a cluster they outlive this process otherwise."""
    if not ray.is_initialized():
        return
    with contextlib.suppress(Exception):  # Serve not started yet
        serve.shutdown()  # type: ignore[no-untyped-call]
    for name in (config.orchestrator.actor_name, config.orchestrator.mirror_name):
        with contextlib.suppress(ValueError):  # not started yet
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    ray.shutdown()


def bootstrap(
    config: ServiceConfig, address: str | None, serve_config: Path = SERVE_CONFIG
) -> RunningService:
    """Everything ``trainctl up`` does before it waits."""
    asyncio.run(prepare_storage(config.database_url, config.pipeline, config.admin_key))
    dashboard_url = connect(address)
    return start(config, dashboard_url, serve_config)
