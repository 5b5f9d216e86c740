"""What route functions receive: the read stores, the orchestrator, the feature store and
the model server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import ray
from fastapi import Depends, Request
from ray.serve.handle import DeploymentHandle

from actors.settings import NAMESPACE
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.keys import ApiKeyStore
from db.registry import ModelRegistry
from db.schedules import ScheduleStore
from pipeline.feature_store import FeatureStore


@dataclass
class Services:
    """Everything the app talks to; built once per replica."""

    store: JobStore
    experiments: ExperimentCatalog
    registry: ModelRegistry
    features: FeatureStore
    model_server: DeploymentHandle[Any]
    keys: ApiKeyStore
    schedules: ScheduleStore
    auth_enabled: bool
    orchestrator_name: str
    max_upload_bytes: int
    max_body_bytes: int
    _orchestrator: Any = None

    @property
    def orchestrator(self) -> Any:
        """The orchestrator's actor handle, looked up by name on first use."""
        if self._orchestrator is None:
            self._orchestrator = ray.get_actor(self.orchestrator_name, namespace=NAMESPACE)
        return self._orchestrator


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
