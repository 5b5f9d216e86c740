"""What route functions receive: the read stores, the orchestrator, the feature store (and
this replica's uploads) and the model server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from ray.serve.handle import DeploymentHandle

from actors.client import OrchestratorClient
from db.experiments import ExperimentCatalog
from db.forecasts import ForecastStore
from db.jobs import JobStore
from db.keys import ApiKeyStore
from db.monitoring import MonitorStore
from db.policies import PolicyStore
from db.registry import ModelRegistry
from db.schedules import ScheduleStore
from pipeline.store.feature_store import FeatureStore
from serve_app.uploads import Uploads


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
    forecasts: ForecastStore
    monitoring: MonitorStore
    policies: PolicyStore
    auth_enabled: bool
    orchestrator_name: str
    uploads: Uploads
    max_body_bytes: int
    _orchestrator: OrchestratorClient | None = None

    @property
    def orchestrator(self) -> OrchestratorClient:
        """The orchestrator's typed client, looked up by name on first use."""
        if self._orchestrator is None:
            self._orchestrator = OrchestratorClient.find(self.orchestrator_name)
        return self._orchestrator


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
