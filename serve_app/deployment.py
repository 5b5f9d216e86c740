"""The Ray Serve application: the API ingress (the FastAPI app on each replica) and the
model server it sends predictions to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.deployment import Application
from ray.serve.handle import DeploymentHandle

from db.database import Database
from db.experiments import ExperimentCatalog
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.keys import ApiKeyStore
from db.monitoring import MonitorStore
from db.policies import PolicyStore
from db.registry import ModelRegistry
from db.schedules import ScheduleStore
from pipeline.settings import PipelineSettings
from pipeline.store.feature_store import FeatureStore
from serve_app.app import create_app
from serve_app.dependencies import Services
from serve_app.model_server import ModelServer
from serve_app.uploads import UploadLimits, Uploads

APP_NAME = "training"


@dataclass(frozen=True)
class ApiConfig:
    database_url: str = field(repr=False)  # holds the password
    pipeline: PipelineSettings
    orchestrator_name: str
    uploads: UploadLimits
    max_body_bytes: int
    model_cache_bytes: int
    auth_enabled: bool
    replicas: int = 1


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=200)
@serve.ingress()
class TrainingApi:
    # Serve awaits an async constructor and routes no request to the replica before it
    # returns: the API answers (``/healthz`` included) only once the orchestrator is up.
    async def __init__(  # type: ignore[misc]
        self,
        config: ApiConfig,
        model_server: DeploymentHandle[Any],
        supervisor: DeploymentHandle[Any],
    ) -> None:
        # A call reaches the supervisor once its bring-up is done (it is bound here so
        # that Serve deploys it with the app: a deployment belongs to an application when
        # the ingress's arguments reach it).
        await supervisor.ready.remote()
        self._services = connect(config, model_server)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self._services)


def connect(config: ApiConfig, model_server: DeploymentHandle[Any]) -> Services:
    """What one replica of the app talks to, built from its configuration."""
    database = Database.from_url(config.database_url)
    return Services(
        store=JobStore(database),
        experiments=ExperimentCatalog(database),
        registry=ModelRegistry(database),
        features=FeatureStore(config.pipeline.features_root),
        model_server=model_server,
        keys=ApiKeyStore(database),
        schedules=ScheduleStore(database),
        forecasts=ForecastStore(database),
        monitoring=MonitorStore(database),
        policies=PolicyStore(database),
        auth_enabled=config.auth_enabled,
        orchestrator_name=config.orchestrator_name,
        uploads=Uploads(config.uploads),
        max_body_bytes=config.max_body_bytes,
    )


def build(config: ApiConfig, supervisor: Application) -> Application:
    """The API and the model server, deployed with ``supervisor`` (which brings up what
    they talk to)."""
    model_server = ModelServer.bind(config.model_cache_bytes)  # type: ignore[attr-defined]
    api = TrainingApi.options(num_replicas=config.replicas)  # type: ignore[attr-defined]
    return api.bind(config, model_server, supervisor)  # type: ignore[no-any-return]
