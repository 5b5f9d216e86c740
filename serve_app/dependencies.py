"""What route functions receive: the read store, the orchestrator, the feature store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import ray
from fastapi import Depends, Request

from actors.settings import NAMESPACE
from db.store import TrainingStore
from pipeline.feature_store import FeatureStore


@dataclass
class Services:
    """Everything the app talks to; built once per replica."""

    store: TrainingStore
    features: FeatureStore
    orchestrator_name: str
    max_upload_bytes: int
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
