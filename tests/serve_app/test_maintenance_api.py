"""Retention on demand through the API: expired jobs go, their experiments stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from db.experiments import ExperimentCatalog
from db.models import TrainingJob
from db.records import MetricPoint, NewJob
from domain.clock import utcnow
from domain.events import JobEvent
from domain.jobs import ModelType
from tests.serve_app.conftest import Deployed


async def test_cleanup_purges_expired_jobs_and_keeps_their_metrics(deployed: Deployed) -> None:
    store = deployed.store
    job = await store.create_job(
        NewJob("tenant-old", ModelType.FORECAST, "old", "forecast_basic", 0, {"horizon": 24})
    )
    await store.transition(job.job_id, JobEvent.START)
    experiment_id = await ExperimentCatalog(store.database).create_experiment(
        job.job_id, "old run", {"lr": 0.1}, [MetricPoint("validation_l1", 3.0, 1)]
    )
    await store.transition(job.job_id, JobEvent.FAIL, error_message="long ago")
    async with store.database.transaction() as session:
        await session.execute(
            update(TrainingJob)
            .where(TrainingJob.job_id == job.job_id)
            .values(completed_at=utcnow() - timedelta(days=31))
        )

    response = await deployed.http.post("/ai/training/maintenance/cleanup")
    assert response.status_code == 200, response.text
    assert response.json()["jobs_deleted"] >= 1
    assert isinstance(response.json()["forecasts_deleted"], int)
    assert (await deployed.http.get(f"/ai/training/jobs/{job.job_id}")).status_code == 404
    experiment = (await deployed.http.get(f"/ai/training/experiments/{experiment_id}")).json()
    assert experiment["job_id"] is None
    assert experiment["job"] is None
    assert experiment["metrics"] == {"validation_l1": 3.0}
    assert experiment["tenant_id"] == "tenant-old"
