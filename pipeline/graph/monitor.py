"""Monitoring as a Ray task: one per model with forecasts to score, ``monitor:<model id>``.

It reads a few forecasts' rows and their window of the feature set (and, once per model,
the training rows its shift checks compare with), so it takes no CPU of a job's
reservation: it holds none (``num_cpus=0``), as the coordinators do.
"""

from __future__ import annotations

import ray
from ray import ObjectRef

from pipeline.monitoring.evaluate import Evaluated, MonitorTask, monitor_model
from pipeline.settings import PipelineSettings
from pipeline.store.feature_store import FeatureStore


def run_monitor(task: MonitorTask, settings: PipelineSettings) -> list[Evaluated]:
    return monitor_model(task, FeatureStore(settings.features_root, task.tenant_id))


_remote_monitor = ray.remote(num_cpus=0, max_retries=1)(run_monitor)


def launch_monitor(task: MonitorTask, settings: PipelineSettings) -> ObjectRef[list[Evaluated]]:
    ref: ObjectRef[list[Evaluated]] = _remote_monitor.options(
        name=f"monitor:{task.model_id}"
    ).remote(task, settings)
    return ref
