"""Jobs over HTTP on the deployed service: real Serve, actor, Ray tasks, LightGBM, databases."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray

from domain.auth import Role
from pipeline.models.artifacts import PREDICTIONS_FILE, load_artifact
from pipeline.storage import Location
from pipeline.store.demo import load_series
from tests.ray_state import task_names, task_states
from tests.serve_app.conftest import SLOW, Deployed


async def test_submitted_job_completes_with_a_registered_loadable_model(deployed: Deployed) -> None:
    response = await deployed.http.post(
        "/ai/training/jobs/start",
        json={
            "tenant_id": "tenant-a",
            "model_type": "forecast",
            "model_name": "load_forecast",
            "config": {
                "feature_set": "forecast_basic",
                "target_variable": "load_kw",
                "start_date": "2024-03-01T00:00:00Z",
                "end_date": "2025-12-01T00:00:00Z",
                "horizon": 24,
                "enable_hpo": False,
                "validation_split": 0.2,
                "test_split": 0.1,
            },
            "priority": "normal",
        },
    )
    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "queued"
    assert created["estimated_duration_seconds"] > 0
    assert set(created) == {
        "job_id",
        "status",
        "created_at",
        "estimated_duration_seconds",
        "message",
    }
    job = await deployed.wait_finished(created["job_id"])

    assert job["status"] == "completed", job
    assert job["progress"] == 1.0
    assert job["error_message"] is None
    assert job["attempts"] == 1
    elapsed = datetime.fromisoformat(job["completed_at"]) - datetime.fromisoformat(
        job["started_at"]
    )
    assert job["duration_seconds"] == round(elapsed.total_seconds())
    assert isinstance(job["duration_seconds"], int)
    metrics = job["metrics"]
    assert {"mae", "rmse", "mape", "r2", "naive_mae", "mase"} <= set(metrics)
    assert metrics["mae"] < metrics["naive_mae"], "LightGBM should beat the seasonal-naive baseline"
    assert job["model_id"].startswith("tenant-a:load_forecast:")

    model = await deployed.registry.get(job["model_id"])
    assert model.job_id == job["job_id"]
    assert Path(model.artifact_uri).is_relative_to(deployed.data_dir / "artifacts")
    artifact = load_artifact(Location(model.artifact_uri))
    assert artifact.metadata["lineage"]["job_id"] == job["job_id"]
    assert artifact.metadata["lineage"]["train_start"] >= "2024-03-01"
    assert artifact.metadata["lineage"]["test_end"] < "2025-12-01"
    assert artifact.metadata["metrics"]["mae"] == metrics["mae"]

    [experiment] = await deployed.experiments.of_job(job["job_id"])
    assert experiment.model_id == job["model_id"]
    assert experiment.params["learning_rate"] == 0.1
    assert experiment.params["objective"] == ["regression", "regression_l1"]
    curve = await deployed.experiments.metric_history(experiment.experiment_id, "validation_l1")
    assert len(curve) >= metrics["best_iteration"]
    assert curve[-1].value < curve[0].value

    logs = (await deployed.http.get(f"/ai/training/jobs/{job['job_id']}/logs?tail=1000")).json()
    stages = {line["stage"] for line in logs["logs"]}
    assert {"load_features", "preprocess", "train", "evaluate", "register"} <= stages
    assert any("best iteration" in line["message"] for line in logs["logs"])
    assert logs["count"] == len(logs["logs"])
    tail = (await deployed.http.get(f"/ai/training/jobs/{job['job_id']}/logs?tail=2")).json()
    assert [line["message"] for line in tail["logs"]] == [
        line["message"] for line in logs["logs"][-2:]
    ]


async def test_stage_tasks_are_named_after_the_job(deployed: Deployed) -> None:
    job_id = await deployed.submit()
    assert (await deployed.wait_finished(job_id))["status"] == "completed"
    names = await task_names(lambda name: name.endswith(job_id), 5)
    assert names == {
        f"{stage}:{job_id}"
        for stage in ("load_features", "preprocess", "train", "evaluate", "register")
    }


async def test_artifact_reproduces_the_evaluation_predictions(
    deployed: Deployed, tmp_path: Path
) -> None:
    job = await deployed.wait_finished(await deployed.submit())
    model = await deployed.registry.get(job["model_id"])
    directory = Path(model.artifact_uri)
    # A fresh process loads the artifact and predicts the test period from the feature store.
    script = f"""
import sys, numpy as np, pandas as pd
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.config import TrainingConfig
from pipeline.store.feature_store import FeatureStore
from pipeline.features.build import build_features
from pipeline.features.preprocess import time_split_bounds
from pipeline.models.artifacts import load_artifact
artifact = load_artifact(Location({str(directory)!r}))
config = TrainingConfig.model_validate(artifact.metadata["config"])
store = FeatureStore(Location({str(deployed.data_dir / "features")!r}))
frame = store.load(config.feature_set, config.end_date)
matrix = build_features(
    frame, artifact.feature_spec, config.start_date, config.end_date,
    columns=artifact.metadata["features"],
)
_, test_start = time_split_bounds(matrix.timestamps, config.validation_split, config.test_split)
mask = (matrix.timestamps >= test_start).to_numpy()
np.save(sys.argv[1], artifact.predict(matrix.features[mask].to_numpy()))
"""
    output = tmp_path / "reproduced.npy"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(output), cwd=Path(__file__).parents[2]
    )
    assert await process.wait() == 0
    reproduced = np.load(output)
    recorded = pd.read_parquet(directory / PREDICTIONS_FILE)["predicted"].to_numpy()
    np.testing.assert_allclose(reproduced, recorded, rtol=1e-9)


async def test_priority_order_with_capacity_one(deployed: Deployed) -> None:
    blocker = await deployed.submit(SLOW, priority="normal")
    await deployed.wait_until(blocker, lambda j: j["status"] == "running")
    order = ["low", "normal", "high", "urgent", "normal", "high"]
    ids = [await deployed.submit(priority=p) for p in order]
    await deployed.http.delete(f"/ai/training/jobs/{blocker}")
    jobs = [await deployed.wait_finished(job_id) for job_id in ids]
    assert all(j["status"] == "completed" for j in jobs), jobs
    started = [j["job_id"] for j in sorted(jobs, key=lambda j: j["started_at"])]
    expected = [ids[3], ids[2], ids[5], ids[1], ids[4], ids[0]]
    assert started == expected
    assert [j["priority"] for j in sorted(jobs, key=lambda j: j["started_at"])] == [
        2,
        1,
        1,
        0,
        0,
        -1,
    ]


async def test_cancel_running_job_stops_its_tasks_and_registers_nothing(deployed: Deployed) -> None:
    job_id = await deployed.submit(SLOW, model_name="cancelled_model")
    await deployed.wait_until(job_id, lambda j: j["stage"] == "preprocess")
    await asyncio.sleep(0.5)  # well into training
    response = await deployed.http.delete(f"/ai/training/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"

    job = await deployed.job(job_id)
    assert job["status"] == "cancelled"
    assert job["model_id"] is None
    # The slot frees as soon as the tasks are gone: a new job runs and completes.
    follower = await deployed.wait_finished(await deployed.submit(), timeout=30)
    assert follower["status"] == "completed"
    assert await deployed.registry.of_job(job_id) == []
    assert not any((deployed.data_dir / "artifacts" / "tenant-a" / "cancelled_model").glob("*"))
    # Not RUNNING any more: Ray ends an interrupted task as FINISHED (or FAILED).
    states = await task_states(f"train:{job_id}", until={"FINISHED", "FAILED"}, timeout=10)
    assert states
    assert set(states) <= {"FINISHED", "FAILED"}
    final = await deployed.job(job_id)
    assert final["status"] == "cancelled"


async def test_cancel_queued_job_never_starts(deployed: Deployed) -> None:
    blocker = await deployed.submit(SLOW)
    await deployed.wait_until(blocker, lambda j: j["status"] == "running")
    queued = await deployed.submit()
    response = await deployed.http.delete(f"/ai/training/jobs/{queued}")
    assert response.json() == {
        "job_id": queued,
        "status": "cancelled",
        "message": "Training job cancelled",
    }
    await deployed.http.delete(f"/ai/training/jobs/{blocker}")
    await deployed.idle()
    job = await deployed.job(queued)
    assert job["status"] == "cancelled"
    assert job["started_at"] is None
    assert job["attempts"] == 0


async def test_finished_jobs_cannot_be_cancelled_and_only_failed_or_cancelled_retry(
    deployed: Deployed,
) -> None:
    done = await deployed.wait_finished(await deployed.submit())
    assert done["status"] == "completed"
    cancel = await deployed.http.delete(f"/ai/training/jobs/{done['job_id']}")
    assert cancel.status_code == 400
    assert "completed" in cancel.json()["detail"]
    retry = await deployed.http.post(f"/ai/training/jobs/{done['job_id']}/retry")
    assert retry.status_code == 400
    assert (await deployed.job(done["job_id"]))["status"] == "completed"


async def test_retry_of_a_cancelled_job_runs_the_same_config(deployed: Deployed) -> None:
    blocker = await deployed.submit(SLOW)
    await deployed.wait_until(blocker, lambda j: j["status"] == "running")
    original = await deployed.submit({"horizon": 48}, model_name="retried")
    await deployed.http.delete(f"/ai/training/jobs/{original}")
    await deployed.http.delete(f"/ai/training/jobs/{blocker}")
    response = await deployed.http.post(f"/ai/training/jobs/{original}/retry")
    assert response.status_code == 201
    retry = response.json()
    assert retry["retry_of"] == original
    assert retry["job_id"] != original
    assert retry["config"] == (await deployed.job(original))["config"]
    finished = await deployed.wait_finished(retry["job_id"])
    assert finished["status"] == "completed"
    assert finished["config"]["horizon"] == 48


async def test_failing_pipeline_marks_the_job_failed_with_its_error(deployed: Deployed) -> None:
    # Two meters of three days: past a day's warm-up too few rows for a test part, which
    # the submission's estimate (it checks a set of several series for warm-up alone)
    # lets through to the preprocess stage.
    name = f"short_{uuid.uuid4().hex[:6]}"
    meters = pd.concat([load_series(seed=n, hours=72).assign(meter=f"m{n}") for n in (1, 2)])
    uploaded = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params={
            "timestamp_column": "timestamp",
            "target_column": "load_kw",
            "series_column": "meter",
        },
        content=meters.to_csv(index=False).encode(),
    )
    assert uploaded.status_code == 200, uploaded.text
    job_id = await deployed.submit({"feature_set": name})
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "failed"
    assert "preprocess failed: only" in job["error_message"]
    assert job["model_id"] is None
    logs = (await deployed.http.get(f"/ai/training/jobs/{job_id}/logs")).json()["logs"]
    errors = [line for line in logs if line["level"] == "ERROR"]
    assert any("Traceback" in line["message"] for line in errors)
    assert any(line["message"].startswith("failed:") for line in errors)
    # The service keeps working.
    assert (await deployed.wait_finished(await deployed.submit()))["status"] == "completed"


@pytest.mark.slow
@pytest.mark.both_databases
async def test_killed_orchestrator_recovers_and_every_job_ends_once(deployed: Deployed) -> None:
    first = await deployed.submit(
        SLOW | {"hyperparameters": {"n_estimators": 1000, "objective": "regression"}}
    )
    await deployed.wait_until(first, lambda j: j["stage"] is not None)
    queued = [await deployed.submit() for _ in range(3)]
    ray.kill(deployed.running.orchestrator, no_restart=False)

    jobs = [await deployed.wait_finished(job_id, timeout=120) for job_id in [first, *queued]]
    assert [j["status"] for j in jobs] == ["completed"] * 4, jobs
    assert jobs[0]["attempts"] == 2
    assert all(j["attempts"] == 1 for j in jobs[1:])
    for job in jobs:
        models = await deployed.registry.of_job(job["job_id"])
        assert [m.model_id for m in models] == [job["model_id"]]
    logs = (await deployed.http.get(f"/ai/training/jobs/{first}/logs?tail=1000")).json()["logs"]
    assert any("re-queued after an interruption" in line["message"] for line in logs)
    assert sum(line["message"].startswith("completed;") for line in logs) == 1


async def test_stats_report_queue_and_capacity(deployed: Deployed) -> None:
    blocker = await deployed.submit(SLOW)
    await deployed.wait_until(blocker, lambda j: j["status"] == "running")
    await deployed.submit()
    stats = (await deployed.http.get("/ai/training/stats")).json()
    assert stats == {
        "active_jobs": 1,
        "queued_jobs": 1,
        "total_capacity": 2,
        "utilization_percent": 50.0,
        "max_capacity": 2,
        "cluster_cpus": 2,
        "cpus_reserved": 1,
        "max_concurrent_jobs": 1,
    }
    running = (await deployed.http.get(f"/ai/training/jobs/{blocker}")).json()
    assert running["resources"] == {
        "cpus": 1,
        "bundles": [{"CPU": 1}],
        "trial_slots": 0,
        "strategy": "PACK",
    }
    assert running["held_cpus"] == 1
    await deployed.http.delete(f"/ai/training/jobs/{blocker}")


async def test_anomaly_job_reports_detection_quality(deployed: Deployed) -> None:
    job_id = await deployed.submit(
        {"feature_set": "anomaly_basic"}, model_type="anomaly", model_name="anomalies"
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    metrics = job["metrics"]
    assert metrics["event_recall"] > 0.4
    assert metrics["event_precision"] > 0.8
    assert 0 < metrics["anomaly_rate"] < 0.05
    # Unless it names one, an anomaly job scores each row against the step before it.
    assert job["config"]["horizon"] == 1
    model = await deployed.registry.get(job["model_id"])
    assert model.model_type.value == "anomaly"


@pytest.mark.both_databases
async def test_a_tenants_queued_jobs_are_cancelled_in_one_call(deployed: Deployed) -> None:
    tenant = f"bulk-{uuid.uuid4().hex[:6]}"
    neighbour = f"{tenant}-next"
    blocker = await deployed.submit(SLOW, tenant_id="bulk-blocker")
    await deployed.wait_until(blocker, lambda j: j["status"] == "running")
    queued = [await deployed.submit(tenant_id=tenant) for _ in range(3)]
    theirs = await deployed.submit(tenant_id=neighbour)
    try:
        for params, field in (
            ({"tenant_id": tenant}, "status"),
            ({"status": "queued"}, "tenant_id"),
            ({"tenant_id": tenant, "status": "running"}, "status"),
            ({"tenant_id": "not a name!", "status": "queued"}, "tenant_id"),
        ):
            refused = await deployed.http.delete("/ai/training/jobs", params=params)
            assert refused.status_code == 422, refused.text
            assert [d["loc"] for d in refused.json()["detail"]] == [["query", field]]
        everyone = {"tenant_id": tenant, "status": "queued"}
        async with deployed.client_for(await deployed.key(neighbour)) as other:
            assert (await other.delete("/ai/training/jobs", params=everyone)).status_code == 404
        viewer_key = await deployed.key(tenant, Role.VIEWER)
        async with deployed.client_for(viewer_key) as viewer:
            assert (await viewer.delete("/ai/training/jobs", params=everyone)).status_code == 403
        assert {(await deployed.job(j))["status"] for j in queued} == {"queued"}

        async with deployed.client_for(await deployed.key(tenant)) as member:
            done = await member.delete("/ai/training/jobs", params=everyone)
            assert done.status_code == 200, done.text
            assert done.json() == {"tenant_id": tenant, "cancelled": 3, "job_ids": queued}
            again = await member.delete("/ai/training/jobs", params=everyone)
            assert again.json()["cancelled"] == 0
        assert {(await deployed.job(j))["status"] for j in queued} == {"cancelled"}
        assert (await deployed.job(theirs))["status"] == "queued"
        assert (await deployed.job(blocker))["status"] == "running"
        logs = (await deployed.http.get(f"/ai/training/jobs/{queued[0]}/logs")).json()["logs"]
        assert any("with the tenant's other queued jobs" in line["message"] for line in logs)

        by_admin = await deployed.http.delete(
            "/ai/training/jobs", params={"tenant_id": neighbour, "status": "queued"}
        )
        assert by_admin.json()["job_ids"] == [theirs]
        stats = await deployed.http.get("/ai/training/stats")
        assert (stats.json()["queued_jobs"], stats.json()["active_jobs"]) == (0, 1)
    finally:
        await deployed.http.delete(f"/ai/training/jobs/{blocker}")
