"""The Ray Serve ingress: one deployment that builds the FastAPI app on each replica."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from ray import serve
from ray.serve.deployment import Application

from db.store import SqlAlchemyStore
from pipeline.feature_store import FeatureStore
from pipeline.settings import PipelineSettings
from serve_app.app import create_app
from serve_app.dependencies import Services

APP_NAME = "training"


@dataclass(frozen=True)
class ApiConfig:
    database_url: str
    pipeline: PipelineSettings
    orchestrator_name: str
    max_upload_bytes: int


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=200)
@serve.ingress()
class TrainingApi:
    def __init__(self, config: ApiConfig) -> None:
        self._services = Services(
            store=SqlAlchemyStore.from_url(config.database_url),
            features=FeatureStore(config.pipeline.features_root),
            orchestrator_name=config.orchestrator_name,
            max_upload_bytes=config.max_upload_bytes,
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self._services)


def build(config: ApiConfig) -> Application:
    return TrainingApi.bind(config)  # type: ignore[attr-defined,no-any-return]
