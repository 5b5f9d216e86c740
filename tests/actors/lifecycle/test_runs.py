"""A job's run as the lifecycle follows it: a run that completes registers its model, a
failed stage or a failed launch ends its job and frees its CPUs for the next, and a model
registered after its job was cancelled is deleted beside the actor's loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from ray.exceptions import WorkerCrashedError

from db.registry import ModelRegistry
from domain.errors import PipelineError, TrainingError
from domain.jobs import JobStatus
from pipeline.stages import Stage, StageReport
from pipeline.storage import Location
from pipeline.summaries import LoadSummary
from tests.actors.lifecycle.harness import NODE_ID, STAGE_MAX_RETRIES, MakeHarness, saved_model


async def test_a_job_runs_and_its_completion_registers_its_model(
    harness_of: MakeHarness, tmp_path: Path
) -> None:
    h = await harness_of()
    job_id = await h.queue_job()

    await h.lifecycle.start_queued()
    assert await h.status(job_id) is JobStatus.RUNNING
    run = h.launcher.runs[job_id]
    load = LoadSummary(rows=720, feature_set="forecast_basic", version="v1")
    run.reports[0].set_result(StageReport(Stage.LOAD_FEATURES, 0.1, 0.25, [], load))
    run.reports[1].set_result(StageReport(Stage.PREPROCESS, 0.2, 0.5, []))
    run.result.set_result(saved_model(tmp_path))
    job = await h.ended(job_id)

    assert job.status is JobStatus.COMPLETED
    assert job.feature_set_version == "v1"
    assert job.metrics is not None
    assert job.metrics["training_time_seconds"] == 0.75
    [model] = await ModelRegistry(h.store.database).of_job(job_id)
    assert job.model_id == model.model_id
    assert (model.version, model.artifact_uri) == ("20260101.000000", str(tmp_path / "model"))
    assert model.metrics == {"mae": 1.25}
    messages = {log.message: log.extra for log in await h.store.tail_logs(job_id, 20)}
    assert messages["started"] == {"node": NODE_ID, "cpus": 1}
    assert h.groups.live() == [], "its reservation was released"
    assert "load_features finished in 0.250s" in messages
    assert f"completed; registered model {model.model_id}" in messages
    assert run.cancels == []
    assert h.lifecycle.running == 0


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PipelineError("too few rows to train"), "too few rows to train"),
        (
            WorkerCrashedError(),
            f"a stage lost its worker node in each of {STAGE_MAX_RETRIES + 1} attempt(s): ",
        ),
    ],
    ids=["domain", "ray"],
)
async def test_a_failed_stage_fails_the_job_with_its_message_and_frees_its_slot(
    harness_of: MakeHarness, error: TrainingError | WorkerCrashedError, message: str
) -> None:
    h = await harness_of(capacity=1)
    first, second = await h.queue_job(), await h.queue_job()

    await h.lifecycle.start_queued()
    h.launcher.runs[first].reports[0].set_result(StageReport(Stage.LOAD_FEATURES, 0.1, 0.1, []))
    h.launcher.runs[first].fail(error)
    job = await h.ended(first)

    assert job.status is JobStatus.FAILED
    assert job.error_message is not None
    assert job.error_message.startswith(message)
    assert job.model_id is None
    await h.lifecycle.start_queued()
    assert await h.status(second) is JobStatus.RUNNING
    assert list(h.launcher.runs) == [first, second]


async def test_a_launch_that_raises_fails_its_job_and_the_next_one_starts(
    harness_of: MakeHarness,
) -> None:
    h = await harness_of(capacity=1)
    first, second = await h.queue_job(), await h.queue_job()
    h.launcher.failing[first] = RuntimeError("the cluster is gone")

    await h.lifecycle.start_queued()

    job = await h.store.get_job(first)
    assert job.status is JobStatus.FAILED
    assert job.error_message == "RuntimeError: the cluster is gone"
    assert not h.lifecycle.tracks(first)
    assert await h.status(second) is JobStatus.RUNNING
    assert list(h.launcher.runs) == [second]


async def test_a_slow_delete_of_an_orphaned_model_leaves_the_loop_responsive(
    harness_of: MakeHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that registers its model after its job was cancelled leaves files nobody
    owns; deleting them (on S3: many calls) happens beside the actor's loop, not on it."""
    delete_dir = Location.delete_dir

    def slow_delete(location: Location) -> None:  # an object store's delete, slowly
        time.sleep(1.0)
        delete_dir(location)

    monkeypatch.setattr(Location, "delete_dir", slow_delete)
    h = await harness_of()
    job_id = await h.queue_job()
    await h.lifecycle.start_queued()
    run = h.launcher.runs[job_id]
    await h.lifecycle.cancel(job_id)
    saved = saved_model(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.txt").write_text("a booster")

    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    for report in run.reports:
        report.set_result(StageReport(Stage.PREPROCESS, 0.2, 0.5, []))
    run.result.set_result(saved)
    job = await h.ended(job_id)
    ticker.cancel()

    assert job.status is JobStatus.CANCELLED
    assert not (tmp_path / "model").exists()
    assert max(gaps) < 0.5, max(gaps)
