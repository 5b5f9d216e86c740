"""Writes the service's records into MLflow: a job as a run, its other experiments (HPO
trials, the search, backtest windows) as child runs, a registered model as a model version,
an alias as an MLflow alias.

Each write is safe to repeat: a job's run is marked complete by its last write, and a run
left incomplete by an interruption is deleted and written again; a model version is looked
up by its run before one is created. Calls are synchronous (MLflow's client is); the mirror
runs them in a thread.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from db.records import ExperimentRecord, JobRecord, MetricPoint, ModelRecord
from domain.jobs import ExperimentStatus, JobStatus
from pipeline.artifacts import MODEL_FILE
from pipeline.storage import Location

#: Tags the mirror puts on what it writes.
JOB_TAG = "service.job_id"
EXPERIMENT_TAG = "service.experiment_id"
COMPLETE_TAG = "service.mirror_complete"
MODEL_TAG = "service.model_id"
PARENT_TAG = "mlflow.parentRunId"
#: MLflow's limits per ``log_batch`` call, and on a parameter's value.
BATCH_METRICS = 1000
BATCH_PARAMS = 100
PARAM_VALUE_CHARS = 6000

_RUN_STATUS = {
    JobStatus.COMPLETED: RunStatus.FINISHED,
    JobStatus.FAILED: RunStatus.FAILED,
    JobStatus.CANCELLED: RunStatus.KILLED,
    ExperimentStatus.COMPLETED: RunStatus.FINISHED,
    ExperimentStatus.FAILED: RunStatus.FAILED,
    ExperimentStatus.CANCELLED: RunStatus.KILLED,
    ExperimentStatus.PRUNED: RunStatus.KILLED,
    ExperimentStatus.RUNNING: RunStatus.KILLED,  # a finished job's leftover
}


class Unmirrorable(Exception):
    """MLflow refused an item for what it is (a name it does not accept), not because it
    is unreachable: retrying will not help."""


def is_refusal(error: MlflowException) -> bool:
    return bool(error.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE))


class MlflowWriter:
    def __init__(self, tracking_uri: str, prefix: str = "") -> None:
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._prefix = prefix

    def experiment_name(self, tenant_id: str, model_name: str) -> str:
        return f"{self._prefix}{tenant_id}/{model_name}"

    def registered_model_name(self, tenant_id: str, model_name: str) -> str:
        return f"{self._prefix}{tenant_id}.{model_name}"

    def write_job(
        self,
        job: JobRecord,
        experiments: Sequence[ExperimentRecord],
        curves: Mapping[str, Sequence[MetricPoint]],
    ) -> str:
        """The job's run id, written now unless a complete run of the job exists.

        The experiment that produced the job's model is the run itself (its parameters
        and validation curve, with the job's config under ``config.`` and its final
        metrics); every other experiment is a child run.
        """
        experiment_id = self._experiment(job.tenant_id, job.model_name)
        for run in self._client.search_runs([experiment_id], f"tags.`{JOB_TAG}` = '{job.job_id}'"):
            if run.data.tags.get(COMPLETE_TAG) == "true":
                return str(run.info.run_id)
            self._delete_with_children(experiment_id, run.info.run_id)
        main = next((e for e in experiments if e.model_id and e.model_id == job.model_id), None)
        run = self._client.create_run(
            experiment_id,
            start_time=_ms(job.started_at or job.created_at),
            tags=_job_tags(job),
            run_name=f"{job.model_name} {job.job_id[:8]}",
        )
        run_id: str = run.info.run_id
        params = {f"config.{k}": v for k, v in _flatten(job.config).items()}
        points: list[MetricPoint] = []
        if main is not None:
            params.update(main.params)
            points.extend(curves.get(main.experiment_id, ()))
        final = {k: v for k, v in (job.metrics or {}).items() if _is_number(v)}
        points.extend(MetricPoint(name, float(value), 0) for name, value in final.items())
        self._log(run_id, params, points, _epoch_ms(job.completed_at or job.updated_at))
        for experiment in experiments:
            if experiment is not main:
                self._write_child(experiment_id, run_id, experiment, curves)
        self._client.set_tag(run_id, COMPLETE_TAG, "true")
        self._client.set_terminated(
            run_id, RunStatus.to_string(_RUN_STATUS[job.status]), _ms(job.completed_at)
        )
        return run_id

    def write_model(self, model: ModelRecord, run_id: str) -> str:
        """The MLflow version of a registered model, created now (its files logged to the
        job's run) unless one from that run exists.

        The MLflow model (``model/``) is the blend's first booster in MLflow's LightGBM
        format; ``service/`` holds the service's artifact directory as it is.
        """
        name = self.registered_model_name(model.tenant_id, model.model_name)
        try:
            self._client.create_registered_model(name, tags={"service.tenant_id": model.tenant_id})
        except MlflowException as error:
            if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        for version in self._client.search_model_versions(f"name='{name}' and run_id='{run_id}'"):
            return str(version.version)
        with tempfile.TemporaryDirectory() as temp:
            service = Path(temp) / "service"
            _copy_artifacts(Location(model.artifact_uri), service)
            _save_lightgbm(service / MODEL_FILE, Path(temp) / "model")
            self._client.log_artifacts(run_id, str(Path(temp) / "model"), "model")
            self._client.log_artifacts(run_id, str(service), "service")
        artifact_uri = self._client.get_run(run_id).info.artifact_uri
        version = self._client.create_model_version(
            name,
            source=f"{artifact_uri}/model",
            run_id=run_id,
            tags={MODEL_TAG: model.model_id, "service.version": model.version},
        )
        return str(version.version)

    def set_alias(self, tenant_id: str, model_name: str, alias: str, version: str) -> None:
        name = self.registered_model_name(tenant_id, model_name)
        try:
            self._client.set_registered_model_alias(name, alias, version)
        except MlflowException as error:
            if is_refusal(error):
                raise Unmirrorable(f"MLflow refuses alias {alias!r}: {error.message}") from error
            raise

    def delete_alias(self, tenant_id: str, model_name: str, alias: str) -> None:
        name = self.registered_model_name(tenant_id, model_name)
        try:
            self._client.delete_registered_model_alias(name, alias)
        except MlflowException as error:
            if error.error_code not in (
                ErrorCode.Name(RESOURCE_DOES_NOT_EXIST),
                ErrorCode.Name(INVALID_PARAMETER_VALUE),
            ):
                raise

    # ------------------------------------------------------------------ helpers

    def _experiment(self, tenant_id: str, model_name: str) -> str:
        name = self.experiment_name(tenant_id, model_name)
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self._client.create_experiment(name, tags={"service.tenant_id": tenant_id}))
        except MlflowException as error:  # created meanwhile by another writer
            found = self._client.get_experiment_by_name(name)
            if found is None:
                raise error from None
            return str(found.experiment_id)

    def _write_child(
        self,
        experiment_id: str,
        parent_id: str,
        experiment: ExperimentRecord,
        curves: Mapping[str, Sequence[MetricPoint]],
    ) -> None:
        run = self._client.create_run(
            experiment_id,
            start_time=_ms(experiment.created_at),
            tags={
                PARENT_TAG: parent_id,
                EXPERIMENT_TAG: experiment.experiment_id,
                "service.status": experiment.status.value,
            },
            run_name=experiment.name,
        )
        points = list(curves.get(experiment.experiment_id, ()))
        end = _epoch_ms(experiment.completed_at or experiment.created_at)
        self._log(run.info.run_id, experiment.params, points, end)
        status = RunStatus.to_string(_RUN_STATUS[experiment.status])
        self._client.set_terminated(run.info.run_id, status, end)

    def _log(
        self,
        run_id: str,
        params: Mapping[str, Any],
        points: Sequence[MetricPoint],
        timestamp: int,
    ) -> None:
        param_list = [Param(k, str(v)[:PARAM_VALUE_CHARS]) for k, v in sorted(params.items())]
        metrics = [
            Metric(p.name, p.value, timestamp, p.step) for p in points if math.isfinite(p.value)
        ]
        for chunk in _chunks(param_list, BATCH_PARAMS):
            self._client.log_batch(run_id, params=chunk, synchronous=True)
        for chunk in _chunks(metrics, BATCH_METRICS):
            self._client.log_batch(run_id, metrics=chunk, synchronous=True)

    def _delete_with_children(self, experiment_id: str, run_id: str) -> None:
        for child in self._client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{run_id}'"):
            self._client.delete_run(child.info.run_id)
        self._client.delete_run(run_id)


def _job_tags(job: JobRecord) -> dict[str, str]:
    tags = {
        JOB_TAG: job.job_id,
        "service.tenant_id": job.tenant_id,
        "service.model_type": job.model_type.value,
        "service.feature_set": job.feature_set,
        "service.status": job.status.value,
    }
    if job.retry_of:
        tags["service.retry_of"] = job.retry_of
    if job.model_id:
        tags[MODEL_TAG] = job.model_id
    if job.error_message:
        tags["service.error"] = job.error_message[:PARAM_VALUE_CHARS]
    return tags


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif value is not None:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ms(moment: datetime | None) -> int | None:
    return _epoch_ms(moment) if moment is not None else None


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _copy_artifacts(source: Location, target: Path) -> None:
    target.mkdir(parents=True)
    for name in source.children():
        entry = source / name
        if entry.is_file():
            (target / name).write_bytes(entry.read_bytes())


def _save_lightgbm(model_file: Path, path: Path) -> None:
    import lightgbm
    import mlflow.lightgbm

    booster = lightgbm.Booster(model_file=str(model_file))
    # Named, not inferred: inference loads the model in a subprocess, seconds of CPU a model.
    requirements = [f"lightgbm=={lightgbm.__version__}"]
    mlflow.lightgbm.save_model(booster, str(path), pip_requirements=requirements)
