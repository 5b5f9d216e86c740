"""An experiment's rows, written in the transaction of whoever writes them: a running
job's recorder (``ExperimentCatalog``) or the job's own transition (``db.jobs``), which
closes its running experiments."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Experiment, ExperimentMetric, ExperimentParam, TrainingJob
from db.records import MetricPoint, NewExperiment
from domain.clock import utcnow
from domain.jobs import ExperimentStatus, JobStatus


def encode_param(value: Any) -> tuple[str, str]:
    """A parameter value as stored: its text and its type name."""
    if isinstance(value, bool):
        return str(value).lower(), "bool"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, float):
        return repr(value), "float"
    if isinstance(value, str):
        return value, "str"
    return json.dumps(value, sort_keys=True), "json"


def decode_param(text: str, value_type: str) -> Any:
    if value_type == "bool":
        return text == "true"
    if value_type == "int":
        return int(text)
    if value_type == "float":
        return float(text)
    if value_type == "json":
        return json.loads(text)
    return text


#: The status a running experiment of a finished job ends with.
_ENDED_AS = {
    JobStatus.COMPLETED: ExperimentStatus.COMPLETED,
    JobStatus.FAILED: ExperimentStatus.FAILED,
    JobStatus.CANCELLED: ExperimentStatus.CANCELLED,
}


async def add_experiments(
    session: AsyncSession, job: TrainingJob, experiments: Sequence[NewExperiment]
) -> list[str]:
    """Open experiments for ``job`` with their parameters and first metric points, in
    ``session``'s transaction; their ids, in order. A job that has finished (a trial
    reported after its cancel) gets them closed with its outcome: no later transition
    would close them."""
    ids = [str(uuid.uuid4()) for _ in experiments]
    if not experiments:
        return ids
    now = utcnow()
    ended = _ENDED_AS.get(JobStatus(job.status))
    statuses = [
        ended if new.status is ExperimentStatus.RUNNING and ended else new.status
        for new in experiments
    ]
    rows = [
        {
            "experiment_id": experiment_id,
            "job_id": job.job_id,
            "tenant_id": job.tenant_id,
            "model_name": job.model_name,
            "name": new.name,
            "status": status.value,
            "created_at": now,
            "completed_at": None if status is ExperimentStatus.RUNNING else now,
        }
        for experiment_id, new, status in zip(ids, experiments, statuses, strict=True)
    ]
    await session.execute(insert(Experiment), rows)
    params = [
        _param_row(experiment_id, name, value)
        for experiment_id, new in zip(ids, experiments, strict=True)
        for name, value in (new.params or {}).items()
    ]
    if params:
        await session.execute(insert(ExperimentParam), params)
    metrics = [
        row
        for experiment_id, new in zip(ids, experiments, strict=True)
        for row in _metric_rows(experiment_id, new.metrics)
    ]
    if metrics:
        await session.execute(insert(ExperimentMetric), metrics)
    return ids


async def add_metrics(
    session: AsyncSession, experiment_id: str, points: Sequence[MetricPoint]
) -> None:
    """Append metric points to an experiment in one batch."""
    if rows := _metric_rows(experiment_id, points):
        await session.execute(insert(ExperimentMetric), rows)


async def close_running(
    session: AsyncSession, job_id: str, outcome: ExperimentStatus, at: datetime
) -> list[str]:
    """End the job's running experiments with ``outcome`` at ``at``; their ids, oldest first."""
    running = (
        await session.scalars(
            select(Experiment)
            .where(Experiment.job_id == job_id)
            .where(Experiment.status == ExperimentStatus.RUNNING.value)
            .order_by(Experiment.created_at)
        )
    ).all()
    for experiment in running:
        experiment.status = outcome.value
        experiment.completed_at = at
    return [experiment.experiment_id for experiment in running]


def _param_row(experiment_id: str, name: str, value: Any) -> dict[str, Any]:
    text, value_type = encode_param(value)
    return {"experiment_id": experiment_id, "name": name, "value": text, "value_type": value_type}


def _metric_rows(experiment_id: str, points: Sequence[MetricPoint]) -> list[dict[str, Any]]:
    """The rows of the points with a finite value: SQLite stores a NaN as NULL, which the
    column refuses (the whole batch with it), PostgreSQL sorts it above every number, and
    MLflow's mirror leaves such points out too."""
    now = utcnow()
    return [
        {
            "experiment_id": experiment_id,
            "name": p.name,
            "value": p.value,
            "step": p.step,
            "recorded_at": now,
        }
        for p in points
        if math.isfinite(p.value)
    ]
