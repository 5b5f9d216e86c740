"""Experiments on both backends: writing them and their metrics; queries with filters,
metric sorting, final values and series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

import db.experiments
from db.experiments import MAX_SERIES_POINTS, ExperimentCatalog, fair_shares
from db.jobs import JobStore
from db.records import ExperimentFilters, ExperimentOrder, MetricPoint, NewExperiment
from domain.errors import ExperimentNotFound
from domain.events import JobEvent
from domain.jobs import ExperimentStatus
from tests.db.factories import new_job


async def experiment(
    store: JobStore, mae: float | None, tenant: str = "tenant-a", model: str = "load"
) -> str:
    job = await store.create_job(new_job(tenant_id=tenant, model_name=model))
    await store.transition(job.job_id, JobEvent.START)
    points = [MetricPoint("validation_l1", 9.0 - step, step) for step in range(1, 4)]
    if mae is not None:
        points.append(MetricPoint("mae", mae, 3))
    return await ExperimentCatalog(store.database).create_experiment(
        job.job_id, "run", {"num_leaves": 31, "objective": "l1", "lr": 0.1}, points
    )


@pytest.fixture
def catalog(store: JobStore) -> ExperimentCatalog:
    return ExperimentCatalog(store.database)


async def test_sorts_by_a_final_metric_with_missing_values_last(
    store: JobStore, catalog: ExperimentCatalog
) -> None:
    ids = {mae: await experiment(store, mae) for mae in (2.0, 1.0, 3.0)}
    no_mae = await experiment(store, None)
    ascending = await catalog.search(ExperimentFilters(), ExperimentOrder("mae", False), 1, 10)
    assert [e.experiment_id for e in ascending.items] == [ids[1.0], ids[2.0], ids[3.0], no_mae]
    descending = await catalog.search(ExperimentFilters(), ExperimentOrder("mae", True), 1, 10)
    assert [e.experiment_id for e in descending.items] == [ids[3.0], ids[2.0], ids[1.0], no_mae]
    assert descending.items[0].metrics == {"mae": 3.0, "validation_l1": 6.0}


async def test_filters_and_paginates(store: JobStore, catalog: ExperimentCatalog) -> None:
    mine = [await experiment(store, 1.0, tenant="tenant-a") for _ in range(3)]
    theirs = await experiment(store, 1.0, tenant="tenant-b", model="other")
    page = await catalog.search(ExperimentFilters(tenant_id="tenant-a"), ExperimentOrder(), 1, 2)
    assert page.total == 3
    assert len(page.items) == 2
    rest = await catalog.search(ExperimentFilters(tenant_id="tenant-a"), ExperimentOrder(), 2, 2)
    assert {e.experiment_id for e in [*page.items, *rest.items]} == set(mine)
    by_model = await catalog.search(ExperimentFilters(model_name="other"), ExperimentOrder(), 1, 9)
    assert [e.experiment_id for e in by_model.items] == [theirs]
    running = ExperimentFilters(status=ExperimentStatus.RUNNING)
    assert (await catalog.search(running, ExperimentOrder(), 1, 9)).total == 4
    future = ExperimentFilters(created_after=datetime.now(UTC) + timedelta(hours=1))
    assert (await catalog.search(future, ExperimentOrder(), 1, 9)).total == 0
    past = ExperimentFilters(created_before=datetime.now(UTC) + timedelta(hours=1))
    assert (await catalog.search(past, ExperimentOrder(), 1, 9)).total == 4


async def test_get_decodes_params_and_reads_series(
    store: JobStore, catalog: ExperimentCatalog
) -> None:
    experiment_id = await experiment(store, 1.25)
    record = await catalog.get(experiment_id)
    assert record.params == {"lr": 0.1, "num_leaves": 31, "objective": "l1"}
    assert record.metrics == {"mae": 1.25, "validation_l1": 6.0}
    series = (await catalog.series([experiment_id], "validation_l1", min_step=2)).points
    assert [(p.step, p.value) for p in series[experiment_id]] == [(2, 7.0), (3, 6.0)]


async def test_unknown_ids_are_named(store: JobStore, catalog: ExperimentCatalog) -> None:
    known = await experiment(store, 1.0)
    with pytest.raises(ExperimentNotFound, match="nope"):
        await catalog.get_many([known, "nope"])


async def test_metric_history_is_ordered_by_step(
    store: JobStore, catalog: ExperimentCatalog
) -> None:
    job = await store.create_job(new_job())
    experiment_id = await ExperimentCatalog(store.database).create_experiment(job.job_id, "train")
    await ExperimentCatalog(store.database).log_metrics(
        experiment_id,
        [MetricPoint("l1", 3.0, 2), MetricPoint("l1", 5.0, 0), MetricPoint("l1", 4.0, 1)],
    )
    await ExperimentCatalog(store.database).log_metrics(experiment_id, [MetricPoint("mae", 1.0, 0)])
    history = await catalog.metric_history(experiment_id, "l1")
    assert [(p.step, p.value) for p in history] == [(0, 5.0), (1, 4.0), (2, 3.0)]


async def test_points_without_a_finite_value_are_left_out_on_both_backends(
    store: JobStore, catalog: ExperimentCatalog
) -> None:
    """SQLite had refused a NaN (stored as NULL) and with it the whole batch."""
    job = await store.create_job(new_job())
    experiment_id = await catalog.create_experiment(
        job.job_id, "search", {}, [MetricPoint("l1", math.nan, 0), MetricPoint("l1", 2.0, 1)]
    )
    await catalog.log_metrics(
        experiment_id, [MetricPoint("l1", math.inf, 2), MetricPoint("l1", 1.0, 3)]
    )
    await catalog.log_metrics(experiment_id, [MetricPoint("l1", -math.inf, 4)])
    history = await catalog.metric_history(experiment_id, "l1")
    assert [(p.step, p.value) for p in history] == [(1, 2.0), (3, 1.0)]


async def test_experiments_opened_after_the_job_finished_are_closed_with_it(
    store: JobStore, catalog: ExperimentCatalog
) -> None:
    """A trial reported during a cancel's grace period had opened the search's experiment
    after the cancel closed the job's: it stayed running for ever."""
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    await store.transition(job.job_id, JobEvent.CANCEL)
    search, trial = await catalog.create_experiments(
        job.job_id,
        [
            NewExperiment("search", {}, [], ExperimentStatus.RUNNING),
            NewExperiment("trial 0", {}, [], ExperimentStatus.PRUNED),
        ],
    )
    found = {e.experiment_id: e for e in await catalog.of_job(job.job_id)}
    assert found[search].status is ExperimentStatus.CANCELLED
    assert found[search].completed_at is not None
    assert found[trial].status is ExperimentStatus.PRUNED


async def test_experiment_created_with_its_first_metrics(
    store: JobStore, catalog: ExperimentCatalog
) -> None:
    job = await store.create_job(new_job())
    experiment_id = await ExperimentCatalog(store.database).create_experiment(
        job.job_id, "train", {"lr": 0.1}, [MetricPoint("l1", 2.0, 1), MetricPoint("l1", 1.0, 2)]
    )
    history = await catalog.metric_history(experiment_id, "l1")
    assert [p.value for p in history] == [2.0, 1.0]


async def test_series_pages_read_every_point_in_order_page_by_page(
    store: JobStore, catalog: ExperimentCatalog
) -> None:
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    ids = []
    for run in range(3):
        points = [
            MetricPoint(name, run + step / 100, step) for name in ("b", "a") for step in range(12)
        ]
        ids.append(
            await ExperimentCatalog(store.database).create_experiment(
                job.job_id, f"run {run}", {}, points
            )
        )
    pages = [page async for page in catalog.series_pages(ids, page_points=5)]
    assert [len(p) for p in pages] == [5] * 14 + [2]
    read = [point for page in pages for point in page]
    expected = (await catalog.series(ids)).points
    assert read == [(i, p) for i in sorted(ids) for p in expected[i]]
    assert [p async for p in catalog.series_pages(["no-such-experiment"])] == []


@pytest.mark.slow
async def test_series_pages_have_no_cap(store: JobStore, catalog: ExperimentCatalog) -> None:
    """A search's curves longer than one series request may hold all reach the mirror."""
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    total = MAX_SERIES_POINTS + 7
    experiment_id = await ExperimentCatalog(store.database).create_experiment(
        job.job_id, "long search"
    )
    for start in range(0, total, 50_000):
        steps = range(start, min(total, start + 50_000))
        await ExperimentCatalog(store.database).log_metrics(
            experiment_id, [MetricPoint("best_value", 1.0, s) for s in steps]
        )
    capped = await catalog.series([experiment_id])
    assert len(capped.points[experiment_id]) == MAX_SERIES_POINTS
    assert capped.truncated == (experiment_id,)
    read = [p.step async for page in catalog.series_pages([experiment_id]) for _, p in page]
    assert read == list(range(total))


async def test_each_experiment_gets_its_share_of_a_series_read(
    store: JobStore, catalog: ExperimentCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long curve beside a short one: the cap was one for all of them, in id order, and
    the experiment whose id sorted last could come back empty without a word."""
    monkeypatch.setattr(db.experiments, "MAX_SERIES_POINTS", 10)
    job = await store.create_job(new_job())
    long, short = [
        await catalog.create_experiment(
            job.job_id, name, {}, [MetricPoint("validation_l1", 1.0, s) for s in range(steps)]
        )
        for name, steps in (("long", 20), ("short", 3))
    ]
    for ids in ([long, short], [short, long]):
        read = await catalog.series(ids, "validation_l1")
        assert [p.step for p in read.points[long]] == list(range(7))  # what short leaves
        assert [p.step for p in read.points[short]] == [0, 1, 2]
        assert read.truncated == (long,)
    whole = await catalog.series([long, short], "validation_l1", max_step=5)
    assert (len(whole.points[long]), whole.truncated) == (6, ())


def test_fair_shares_cut_only_what_does_not_fit() -> None:
    assert fair_shares({"a": 60_000, "b": 10}, 100_000) == {"a": 60_000, "b": 10}
    assert fair_shares({"a": 90_000, "b": 80_000, "c": 5}, 100_000) == {
        "a": 49_998,
        "b": 49_997,
        "c": 5,
    }
