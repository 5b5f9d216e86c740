"""An HPO job's trials written as they finish, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from actors.recorder import RunStores, SearchRecorder
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.records import JobRecord, MetricPoint, NewExperiment
from domain.errors import ServiceUnavailable
from domain.events import JobEvent
from domain.jobs import ExperimentStatus
from pipeline.search_results import SearchProgress, TrialReport
from tests.databases import BACKENDS, migrated_store
from tests.db.factories import new_job

PARAMS = {"learning_rate": 0.1, "num_leaves": 20}


class CountingExperiments(ExperimentCatalog):
    """The real catalog, counting the experiment batches it writes and failing on demand."""

    def __init__(self, store: JobStore) -> None:
        super().__init__(store.database)
        self.store = store
        self.batches: list[int] = []
        self.fail_next = False
        self.fail_next_metrics = False

    async def create_experiments(
        self, job_id: str, experiments: Sequence[NewExperiment]
    ) -> list[str]:
        if self.fail_next:
            self.fail_next = False
            raise ServiceUnavailable("database unavailable: test")
        self.batches.append(len(experiments))
        await asyncio.sleep(0.02)  # a write that takes a while, as under load
        return await super().create_experiments(job_id, experiments)

    async def log_metrics(self, experiment_id: str, points: Sequence[MetricPoint]) -> None:
        if self.fail_next_metrics:
            self.fail_next_metrics = False
            raise ServiceUnavailable("database unavailable: test")
        await super().log_metrics(experiment_id, points)


@pytest.fixture(params=BACKENDS)
async def experiments(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[CountingExperiments]:
    async with migrated_store(request.param, tmp_path) as store:
        yield CountingExperiments(store)


async def running_job(store: JobStore) -> JobRecord:
    job = await store.create_job(new_job())
    return await store.transition(job.job_id, JobEvent.START)


def trial(number: int, value: float) -> tuple[TrialReport, SearchProgress]:
    report = TrialReport(
        number,
        ExperimentStatus.COMPLETED,
        value,
        PARAMS,
        3,
        [value + 2, value + 1, value],
        0.1,
        None,
        {},
    )
    return report, SearchProgress(10, number + 1, 0, 0, value, PARAMS)


async def test_trials_finishing_together_are_written_in_fewer_batches(
    experiments: CountingExperiments,
) -> None:
    store = experiments.store
    job = await running_job(store)
    recorder = SearchRecorder(RunStores(store, experiments), job)
    await asyncio.gather(*(recorder.record(*trial(n, 20.0 - n)) for n in range(10)))

    written = {e.name: e for e in await experiments.of_job(job.job_id)}
    catalog = ExperimentCatalog(store.database)
    assert set(written) == {f"trial {n}" for n in range(10)} | {"search"}
    assert sum(experiments.batches) == 11
    assert len(experiments.batches) < 10
    for n in range(10):
        experiment = written[f"trial {n}"]
        assert experiment.status is ExperimentStatus.COMPLETED
        assert experiment.params == PARAMS
        curve = await catalog.metric_history(experiment.experiment_id, "validation_l1")
        assert [(p.step, p.value) for p in curve] == [(1, 22 - n), (2, 21 - n), (3, 20 - n)]
    best = await catalog.metric_history(written["search"].experiment_id, "best_value")
    assert [p.step for p in best] == list(range(1, 11))  # by trials finished
    updated = await store.get_job(job.job_id)
    assert updated.metrics is not None
    assert updated.metrics["trials_completed"] == 10
    logs = await store.tail_logs(job.job_id, 100)
    assert sorted(
        line.message.split(":")[0] for line in logs if line.message.startswith("trial")
    ) == sorted(f"trial {n} completed" for n in range(10))


async def test_a_trial_reported_again_is_written_once(experiments: CountingExperiments) -> None:
    store = experiments.store
    job = await running_job(store)
    await SearchRecorder(RunStores(store, experiments), job).record(*trial(0, 15.0))
    # a restarted orchestrator re-reads what is there
    resumed = SearchRecorder(RunStores(store, experiments), job)
    await asyncio.gather(resumed.record(*trial(0, 15.0)), resumed.record(*trial(1, 14.0)))
    names = sorted(e.name for e in await experiments.of_job(job.job_id))
    assert names == ["search", "trial 0", "trial 1"]


async def test_trials_whose_write_failed_are_written_by_the_next_report(
    experiments: CountingExperiments,
) -> None:
    store = experiments.store
    job = await running_job(store)
    recorder = SearchRecorder(RunStores(store, experiments), job)
    experiments.fail_next = True
    with pytest.raises(ServiceUnavailable):
        await recorder.record(*trial(0, 15.0))
    await recorder.record(*trial(1, 14.0))
    names = sorted(e.name for e in await experiments.of_job(job.job_id))
    assert names == ["search", "trial 0", "trial 1"]


async def test_a_write_failing_after_the_trials_were_created_adds_no_twin(
    experiments: CountingExperiments,
) -> None:
    """The trials' rows committed, then the search's curve failed: the retry had created
    them again. It writes the rest of theirs: the curve, the progress and the log."""
    store = experiments.store
    job = await running_job(store)
    recorder = SearchRecorder(RunStores(store, experiments), job)
    experiments.fail_next_metrics = True
    with pytest.raises(ServiceUnavailable):
        await recorder.record(*trial(0, 15.0))
    written = await recorder.record(*trial(1, 14.0))
    assert [t.number for t in written] == [0, 1]
    found = {e.name: e for e in await experiments.of_job(job.job_id)}
    assert sorted(found) == ["search", "trial 0", "trial 1"]
    catalog = ExperimentCatalog(store.database)
    best = await catalog.metric_history(found["search"].experiment_id, "best_value")
    assert [(p.step, p.value) for p in best] == [(1, 15.0), (2, 14.0)]
    logs = await store.tail_logs(job.job_id, 10)
    assert sum(line.message.startswith("trial 0") for line in logs) == 1


async def test_a_requeued_search_goes_on_in_a_new_experiment_holding_its_whole_curve(
    experiments: CountingExperiments,
) -> None:
    store = experiments.store
    job = await running_job(store)
    first = SearchRecorder(RunStores(store, experiments), job)
    await first.record(*trial(0, 15.0))
    await first.record(*trial(1, 14.0))
    await store.transition(job.job_id, JobEvent.REQUEUE)  # the worker died: closes the search
    job = await store.transition(job.job_id, JobEvent.START)
    resumed = SearchRecorder(RunStores(store, experiments), job)
    await resumed.record(*trial(1, 14.0))  # re-reported by the resumed study
    await resumed.record(*trial(2, 13.0))

    searches = [e for e in await experiments.of_job(job.job_id) if e.name == "search"]
    assert [e.status for e in searches] == [ExperimentStatus.FAILED, ExperimentStatus.RUNNING]
    catalog = ExperimentCatalog(store.database)
    best = await catalog.metric_history(searches[-1].experiment_id, "best_value")
    assert [(p.step, p.value) for p in best] == [(1, 15.0), (2, 14.0), (3, 13.0)]
