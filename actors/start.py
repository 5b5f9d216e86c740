"""Bringing the orchestrator up: one detached, named actor on the head node."""

from __future__ import annotations

from typing import Any, cast

import ray
from ray.actor import ActorHandle

from actors.orchestrator import JobOrchestrator
from actors.settings import NAMESPACE, OrchestratorSettings
from pipeline.settings import PipelineSettings

#: A resource only Ray's head node has.
HEAD_NODE_RESOURCE = "node:__internal_head__"


def orchestrator_options(settings: OrchestratorSettings) -> dict[str, Any]:
    """Detached, named, restarted forever, holding no CPU (it only coordinates), and on the
    head node, so losing a worker node never takes the queue's keeper with it."""
    return {
        "name": settings.actor_name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": -1,
        "num_cpus": 0,
        "resources": {HEAD_NODE_RESOURCE: 0.001},
        "get_if_exists": True,
    }


def start_orchestrator(
    database_url: str, pipeline: PipelineSettings, settings: OrchestratorSettings
) -> ActorHandle[JobOrchestrator]:
    """Create the orchestrator, or return the running one with that name."""
    actor = ray.remote(JobOrchestrator).options(**orchestrator_options(settings))
    return cast(ActorHandle[JobOrchestrator], actor.remote(database_url, pipeline, settings))
