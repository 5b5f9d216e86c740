"""The MLflow writer on a real tracking server: a write interrupted half-way is redone
whole, once, and writing again changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mlflow import MlflowClient

from actors.mlflow_writer import COMPLETE_TAG, JOB_TAG, PARENT_TAG, MlflowWriter
from db.records import ExperimentRecord, JobRecord, MetricPoint
from domain.jobs import ExperimentStatus, JobStatus, ModelType
from tests.mlflow_server import MlflowServer

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def finished_job(job_id: str) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        tenant_id="tenant-w",
        model_type=ModelType.FORECAST,
        model_name="writer",
        feature_set="forecast_basic",
        status=JobStatus.COMPLETED,
        priority=0,
        progress=1.0,
        stage=None,
        config={"feature_set": "forecast_basic", "hyperparameters": {"n_estimators": 10}},
        metrics={"mae": 1.5, "best_params": {"learning_rate": 0.1}},
        model_id=None,
        error_message=None,
        retry_of="an-earlier-job",
        attempts=1,
        created_at=NOW,
        updated_at=NOW,
        started_at=NOW,
        completed_at=NOW,
    )


def test_an_interrupted_write_is_redone_once(mlflow_server: MlflowServer) -> None:
    mlflow_server.wait_ready()
    writer = MlflowWriter(mlflow_server.uri, prefix=f"writer-{uuid.uuid4().hex[:8]}-")
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    job = finished_job(str(uuid.uuid4()))
    trial = ExperimentRecord(
        experiment_id="experiment-1",
        job_id=job.job_id,
        tenant_id=job.tenant_id,
        model_name=job.model_name,
        name="trial 0",
        status=ExperimentStatus.PRUNED,
        model_id=None,
        created_at=NOW,
        completed_at=NOW,
        params={"learning_rate": 0.1},
    )
    curves = {
        "experiment-1": [MetricPoint("validation_l1", 2.0, 1), MetricPoint("validation_l1", 1.8, 2)]
    }
    experiment = client.create_experiment(writer.experiment_name(job.tenant_id, job.model_name))
    # An earlier write stopped half-way: a run and a child, never marked complete.
    stale = client.create_run(experiment, tags={JOB_TAG: job.job_id}).info.run_id
    client.create_run(experiment, tags={PARENT_TAG: stale})

    run_id = writer.write_job(job, [trial], curves)
    assert writer.write_job(job, [trial], curves) == run_id

    [run] = client.search_runs([experiment], f"tags.`{JOB_TAG}` = '{job.job_id}'")
    assert run.info.run_id == run_id != stale
    assert run.data.tags[COMPLETE_TAG] == "true"
    assert run.data.tags["service.retry_of"] == "an-earlier-job"
    assert run.data.params["config.hyperparameters.n_estimators"] == "10"
    assert run.data.metrics == {"mae": 1.5}  # numbers only: best_params is not a metric
    assert not client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{stale}'")
    [child] = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{run_id}'")
    assert (child.info.run_name, child.info.status) == ("trial 0", "KILLED")
    history = client.get_metric_history(child.info.run_id, "validation_l1")
    assert [(p.step, p.value) for p in history] == [(1, 2.0), (2, 1.8)]


def test_registered_model_names_of_two_tenants_never_meet(mlflow_server: MlflowServer) -> None:
    writer = MlflowWriter(mlflow_server.uri, prefix="svc.")
    assert writer.registered_model_name("tenant-a", "load") == "svc.tenant-a.load"
    assert writer.registered_model_name("acme.eu", "load") != writer.registered_model_name(
        "acme", "eu.load"
    )
