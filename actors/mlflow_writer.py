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
from dataclasses import dataclass
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

from db.records import ExperimentRecord, JobRecord, MetricPoint, ModelRecord, PromotionRecord
from domain.jobs import ExperimentStatus, JobStatus
from pipeline.forecasting.mlflow_model import save_service_model
from pipeline.storage import Location

#: Tags the mirror puts on what it writes.
JOB_TAG = "service.job_id"
EXPERIMENT_TAG = "service.experiment_id"
COMPLETE_TAG = "service.mirror_complete"
MODEL_TAG = "service.model_id"
#: The prefix of a promotion decision's tags on a model version.
PROMOTION_TAG = "service.promotion"
#: MLflow keeps tag values of up to 5,000 characters.
PROMOTION_REASON_CHARS = 5000
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


@dataclass(frozen=True)
class JobRuns:
    """A job's MLflow run (``complete``: written whole earlier) and, while it is being
    written, each experiment's run id and metric timestamp (the job's run for the
    experiment that produced its model)."""

    run_id: str
    experiments: dict[str, tuple[str, int]]
    complete: bool = False


class Unmirrorable(Exception):
    """MLflow refused an item for what it is (a name it does not accept), not because it
    is unreachable: retrying will not help."""


def is_refusal(error: MlflowException) -> bool:
    return bool(error.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE))


def _dots_doubled(name: str) -> str:
    return name.replace(".", "..")


class MlflowWriter:
    def __init__(self, tracking_uri: str, prefix: str = "") -> None:
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._prefix = prefix

    def experiment_name(self, tenant_id: str, model_name: str) -> str:
        return f"{self._prefix}{tenant_id}/{model_name}"

    def registered_model_name(self, tenant_id: str, model_name: str) -> str:
        """``<tenant>.<model>``, a dot within either doubled: tenant ``acme.eu``'s model
        ``load`` and tenant ``acme``'s ``eu.load`` are two models (MLflow refuses ``/`` in
        these names; ours begin with a letter or digit, so the split is never ambiguous)."""
        return f"{self._prefix}{_dots_doubled(tenant_id)}.{_dots_doubled(model_name)}"

    def write_job(
        self,
        job: JobRecord,
        experiments: Sequence[ExperimentRecord],
        curves: Mapping[str, Sequence[MetricPoint]],
    ) -> str:
        """The job's run id, written now unless a complete run of the job exists (its
        curves in one go: the mirror streams them with ``open_job``/``log_curves``)."""
        runs = self.open_job(job, experiments)
        if not runs.complete:
            self.log_curves(runs, [(e, p) for e, points in curves.items() for p in points])
            self.close_job(job, experiments, runs)
        return runs.run_id

    def open_job(self, job: JobRecord, experiments: Sequence[ExperimentRecord]) -> JobRuns:
        """The job's run: the complete one if it exists, else a new one (an incomplete
        one is deleted) with its parameters and final metrics, and its child runs.

        The experiment that produced the job's model is the run itself (its parameters
        and validation curve, with the job's config under ``config.`` and its final
        metrics); every other experiment is a child run. Curves follow (``log_curves``);
        the runs are marked complete last (``close_job``).
        """
        experiment_id = self._experiment(job.tenant_id, job.model_name)
        for run in self._client.search_runs([experiment_id], f"tags.`{JOB_TAG}` = '{job.job_id}'"):
            if run.data.tags.get(COMPLETE_TAG) == "true":
                return JobRuns(str(run.info.run_id), {}, complete=True)
            self._delete_with_children(experiment_id, run.info.run_id)
        main = _main(job, experiments)
        run = self._client.create_run(
            experiment_id,
            start_time=_ms(job.started_at or job.created_at),
            tags=_job_tags(job),
            run_name=f"{job.model_name} {job.job_id[:8]}",
        )
        run_id: str = run.info.run_id
        end = _epoch_ms(job.completed_at or job.updated_at)
        params = {f"config.{k}": v for k, v in _flatten(job.config).items()}
        if main is not None:
            params.update(main.params)
        final = {k: v for k, v in (job.metrics or {}).items() if _is_number(v)}
        self._log(run_id, params, [MetricPoint(k, float(v), 0) for k, v in final.items()], end)
        runs = {main.experiment_id: (run_id, end)} if main is not None else {}
        for experiment in experiments:
            if experiment is not main:
                runs[experiment.experiment_id] = self._open_child(experiment_id, run_id, experiment)
        return JobRuns(run_id, runs)

    def log_curves(self, runs: JobRuns, points: Sequence[tuple[str, MetricPoint]]) -> None:
        """Log (experiment id, point) pairs, a page of the job's curves, to their runs."""
        by_run: dict[str, list[Metric]] = {}
        for experiment_id, point in points:
            run_id, timestamp = runs.experiments[experiment_id]
            if math.isfinite(point.value):
                metric = Metric(point.name, point.value, timestamp, point.step)
                by_run.setdefault(run_id, []).append(metric)
        for run_id, metrics in by_run.items():
            for chunk in _chunks(metrics, BATCH_METRICS):
                self._client.log_batch(run_id, metrics=chunk, synchronous=True)

    def close_job(
        self, job: JobRecord, experiments: Sequence[ExperimentRecord], runs: JobRuns
    ) -> None:
        """End the child runs, then mark the job's run complete and end it."""
        for experiment in experiments:
            run_id, end = runs.experiments[experiment.experiment_id]
            if run_id != runs.run_id:
                status = RunStatus.to_string(_RUN_STATUS[experiment.status])
                self._client.set_terminated(run_id, status, end)
        self._client.set_tag(runs.run_id, COMPLETE_TAG, "true")
        self._client.set_terminated(
            runs.run_id, RunStatus.to_string(_RUN_STATUS[job.status]), _ms(job.completed_at)
        )

    def write_model(self, model: ModelRecord, run_id: str) -> str:
        """The MLflow version of a registered model, created now (its files logged to the
        job's run) unless one from that run exists.

        The MLflow model (``model/``) is a pyfunc model that forecasts as the service's
        predict endpoint does (``pipeline.forecasting.mlflow_model``), a per-series model too: it
        holds the service's artifact directory as it is (``model/artifacts/service``).
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
            save_service_model(service, Path(temp) / "model")
            self._client.log_artifacts(run_id, str(Path(temp) / "model"), "model")
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

    def tag_decision(self, version: str, decision: PromotionRecord) -> None:
        """A promotion decision as tags (``service.promotion.*``) of the version it was
        about: the challenger, or for a rollback the version rolled back (the latest
        decision on a version is the one its tags tell)."""
        name = self.registered_model_name(decision.tenant_id, decision.model_name)
        for key, value in decision_tags(decision).items():
            self._client.set_model_version_tag(name, version, key, value)

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

    def reachable(self) -> bool:
        """Whether the tracking server answers now."""
        try:
            self._client.search_experiments(max_results=1)
        except (MlflowException, OSError):
            return False
        return True

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

    def _open_child(
        self, experiment_id: str, parent_id: str, experiment: ExperimentRecord
    ) -> tuple[str, int]:
        """A child run with the experiment's parameters: its id and end time."""
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
        end = _epoch_ms(experiment.completed_at or experiment.created_at)
        self._log(run.info.run_id, experiment.params, [], end)
        return str(run.info.run_id), end

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


def decision_tags(decision: PromotionRecord) -> dict[str, str]:
    """A decision's tags: what was decided and why, both scores, the period and the test."""
    evidence = decision.evidence
    window = evidence.get("window") or {}
    test = evidence.get("paired_test") or {}
    values = {
        "decision": decision.decision.value,
        "promotion_id": decision.promotion_id,
        "decided_at": decision.decided_at.isoformat(),
        "champion": decision.champion_id,
        "job_id": decision.job_id,
        "reason": decision.reason[:PROMOTION_REASON_CHARS],
        "metric": evidence.get("metric"),
        "margin": evidence.get("margin"),
        "challenger_score": evidence.get("challenger_score"),
        "champion_score": evidence.get("champion_score"),
        "confidence": test.get("confidence"),
        "p_value": test.get("p_value"),
        "window_start": window.get("start"),
        "window_end": window.get("end"),
        "windows": test.get("windows"),
    }
    return {
        f"{PROMOTION_TAG}.{key}": str(value) for key, value in values.items() if value is not None
    }


def _main(job: JobRecord, experiments: Sequence[ExperimentRecord]) -> ExperimentRecord | None:
    """The experiment that produced the job's model."""
    return next((e for e in experiments if e.model_id and e.model_id == job.model_id), None)


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
    """A model's artifact directory, its series' subdirectories too.

    Raises:
        FileNotFoundError: the directory is gone.
    """
    if not source.is_dir():
        raise FileNotFoundError(f"the model's directory {source} is gone")
    target.mkdir(parents=True)
    for name in source.children():
        entry = source / name
        if entry.is_file():
            (target / name).write_bytes(entry.read_bytes())
        elif entry.is_dir():
            _copy_artifacts(entry, target / name)
