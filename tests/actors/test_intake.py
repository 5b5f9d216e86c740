"""The way into the queue: an idempotency key admits a request once, a job that could
never run or a tenant with a full queue writes no row, and concurrent retries pass the
tenant's queue limit once between them. A real SQLite store and a real feature store with
the demo sets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from actors.admission import Admission, TenantLimits
from actors.cluster import ClusterShape
from actors.intake import Intake
from actors.queue import JobQueue
from actors.submission import JobSubmission
from actors.validation import JobValidator
from db.jobs import JobStore
from db.records import JobFilters, JobRecord
from domain.clock import utcnow
from domain.errors import Conflict, IdempotencyKeyReused, InvalidRequest, TooManyRequests
from domain.events import JobEvent
from domain.jobs import JobStatus, ModelType
from pipeline.config import TrainingConfig
from pipeline.resources import Demand
from pipeline.storage import Location
from pipeline.store.demo import ensure_demo_feature_sets, load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.versions import importing as feature_import
from tests.databases import migrated_store
from tests.db.factories import new_job, new_model

CONFIG = TrainingConfig(feature_set="forecast_basic", horizon=24, target_variable="load_kw")
TWO_CPUS = ClusterShape.of(2)

MakeIntake = Callable[..., Intake]


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    """The demo sets, built once for the module."""
    store = FeatureStore(Location(str(tmp_path_factory.mktemp("features"))))
    ensure_demo_feature_sets(store)
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store("sqlite", tmp_path) as store:
        yield store


@pytest.fixture
def intake_of(store: JobStore, features: FeatureStore) -> MakeIntake:
    def make(
        limits: Mapping[str, TenantLimits] | None = None,
        cluster: ClusterShape = TWO_CPUS,
        queue: JobQueue | None = None,
        features: FeatureStore = features,
    ) -> Intake:
        return Intake(
            store,
            JobValidator(features, lambda: cluster, distributed_min_rows=5_000_000),
            Admission(TenantLimits(), limits or {}),
            JobQueue() if queue is None else queue,
            idempotency_window=timedelta(hours=24),
            clock=utcnow,
            on_queued=lambda: None,
        )

    return make


def submission(**config: object) -> JobSubmission:
    return JobSubmission(
        tenant_id="tenant-a",
        model_type=ModelType.FORECAST,
        model_name="load_forecast",
        config=TrainingConfig.model_validate({**CONFIG.model_dump(), **config}),
    )


async def rows(store: JobStore) -> list[JobRecord]:
    return list((await store.list_jobs(JobFilters(), 1, 100)).items)


async def finished_job(store: JobStore, event: JobEvent) -> JobRecord:
    job = await store.create_job(new_job(config=CONFIG.model_dump(mode="json")))
    await store.transition(job.job_id, JobEvent.START)
    model = new_model() if event is JobEvent.COMPLETE else None
    return await store.transition(job.job_id, event, model=model)


async def test_a_repeated_key_returns_the_job_it_created(
    intake_of: MakeIntake, store: JobStore
) -> None:
    intake = intake_of()

    job, created = await intake.submit(submission(), "key-1")
    again, created_again = await intake.submit(submission(), "key-1")

    assert (created, created_again) == (True, False)
    assert again.job_id == job.job_id
    assert [(r.job_id, r.status) for r in await rows(store)] == [(job.job_id, JobStatus.QUEUED)]


async def test_a_key_used_for_another_request_is_refused(
    intake_of: MakeIntake, store: JobStore
) -> None:
    intake = intake_of()
    job, _ = await intake.submit(submission(), "key-1")

    with pytest.raises(IdempotencyKeyReused):
        await intake.submit(submission(horizon=48), "key-1")

    assert [r.job_id for r in await rows(store)] == [job.job_id]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"feature_set": "no_such_set"}, "config.feature_set"),
        ({"target_variable": "price"}, "config.target_variable"),
    ],
    ids=["feature-set", "target"],
)
async def test_a_job_that_could_never_run_is_refused_and_writes_nothing(
    intake_of: MakeIntake, store: JobStore, config: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await intake_of().submit(submission(**config), "key-1")

    assert refused.value.field == field
    assert await rows(store) == []


async def test_a_model_name_keeps_the_type_it_was_registered_with(
    intake_of: MakeIntake, store: JobStore
) -> None:
    registered = await finished_job(store, JobEvent.COMPLETE)  # a forecast model
    anomaly = submission().model_copy(update={"model_type": ModelType.ANOMALY})
    with pytest.raises(InvalidRequest) as refused:
        await intake_of().submit(anomaly, "key-1")
    assert refused.value.field == "model_type"
    assert [job.job_id for job in await rows(store)] == [registered.job_id]
    other_name = anomaly.model_copy(update={"model_name": "load_anomalies"})
    queued, _ = await intake_of().submit(other_name, "key-2")
    assert queued.model_type is ModelType.ANOMALY


async def test_a_new_name_takes_the_type_of_its_first_job_queued(
    intake_of: MakeIntake, store: JobStore
) -> None:
    """Two jobs of different types under a name nothing is registered as, queued together:
    both had been queued, and each registered its own type under the one name."""
    intake = intake_of()
    first, _ = await intake.submit(submission(), "key-1")  # a forecast model, queued
    anomaly = submission().model_copy(update={"model_type": ModelType.ANOMALY})
    with pytest.raises(InvalidRequest) as refused:
        await intake.submit(anomaly, "key-2")
    assert refused.value.field == "model_type"
    assert "is a forecast model" in refused.value.message
    assert [job.job_id for job in await rows(store)] == [first.job_id]
    await store.transition(first.job_id, JobEvent.START)
    await store.transition(first.job_id, JobEvent.CANCEL)  # it never registered one
    queued, _ = await intake.submit(anomaly, "key-3")
    assert queued.model_type is ModelType.ANOMALY


async def test_a_set_of_one_timestamp_is_refused_on_config_feature_set(
    intake_of: MakeIntake, store: JobStore, tmp_path: Path
) -> None:
    one = FeatureStore(Location(str(tmp_path / "one")))
    one.put(
        "forecast_basic",
        pd.DataFrame({"timestamp": [pd.Timestamp("2025-01-01", tz="UTC")], "load_kw": [1.0]}),
        timestamp_column="timestamp",
        target_column="load_kw",
    )
    with pytest.raises(InvalidRequest) as refused:
        await intake_of(features=one).submit(submission(), "key-1")
    assert refused.value.field == "config.feature_set"
    assert await rows(store) == []


async def test_a_set_imported_with_a_covariate_named_like_a_feature_is_refused(
    intake_of: MakeIntake, store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Imports refuse such names now; a set imported before them fails every job."""
    old = FeatureStore(Location(str(tmp_path / "old")))
    frame = load_series(seed=1, hours=24 * 60).assign(month=1.0, _sensor=2.0)
    with monkeypatch.context() as before:
        before.setattr(feature_import, "is_feature_column", lambda name: False)
        old.put("forecast_basic", frame, timestamp_column="timestamp", target_column="load_kw")
    # Only the names that collide: _sensor, held to the prefix at upload now, did not.
    with pytest.raises(InvalidRequest, match=r"covariates \['month'\]") as refused:
        await intake_of(features=old).submit(submission(), "key-1")
    assert refused.value.field == "config.feature_set"
    assert await rows(store) == []


async def test_a_job_that_fits_the_clusters_maximum_is_queued_with_its_demand(
    intake_of: MakeIntake, store: JobStore
) -> None:
    """One 2-CPU node now, up to 6 CPUs on nodes of 2 (an autoscaling cluster): jobs that
    need more CPUs than there are now wait for the cluster to grow."""
    queue = JobQueue()
    intake = intake_of(cluster=ClusterShape.of(2, largest_node=2, max_cpus=6), queue=queue)

    search, _ = await intake.submit(submission(enable_hpo=True, n_workers=4))
    data_parallel, _ = await intake.submit(submission(n_workers=2, distributed={"workers": 3}))
    backtest, _ = await intake.submit(submission(backtest={"windows": 3}))

    assert [r.status for r in await rows(store)] == [JobStatus.QUEUED] * 3
    assert queue.ordered() == [search.job_id, data_parallel.job_id, backtest.job_id]
    assert queue.demands() == [
        Demand((1,), slots=3),
        Demand((2, 2, 2), spread=True),
        Demand((1, 1)),  # the stages' bundle and a window at once: the two CPUs there are
    ]


async def test_fan_out_widths_left_to_the_service_are_fixed_from_the_cluster(
    intake_of: MakeIntake, store: JobStore
) -> None:
    """A search's trials at once (at most its trials) and a backtest's windows at once:
    the cluster's CPUs when the job is submitted, stored with it so that what it holds
    is known while it waits."""
    intake = intake_of(cluster=ClusterShape.of(2, 2, 2))

    search, _ = await intake.submit(submission(enable_hpo=True, n_trials=4))
    wide, _ = await intake.submit(submission(enable_hpo=True, n_trials=40))
    backtest, _ = await intake.submit(submission(backtest={"windows": 3}))

    assert search.config["n_workers"] == 4
    assert wide.config["n_workers"] == 6
    assert backtest.config["backtest"]["workers"] == 3  # beside the stage bundle's CPU
    assert backtest.config["n_workers"] is None


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({"n_workers": 4}, "config.n_workers", "the largest node has 2 CPUs"),
        (
            {"n_workers": 2, "distributed": {"workers": 4}},
            "config.distributed.workers",
            "the cluster's ceiling of 6 CPUs (2 now)",
        ),
        (
            {"enable_hpo": True, "n_workers": 7},
            "config.n_workers",
            "the cluster's ceiling of 6 CPUs (2 now)",
        ),
        (
            {"backtest": {"windows": 9, "workers": 9}},
            "config.backtest.workers",
            "the cluster's ceiling of 6 CPUs (2 now)",
        ),
    ],
    ids=["task-beyond-the-largest-node", "distributed", "search", "backtest"],
)
async def test_a_job_no_node_or_cluster_could_ever_hold_is_refused(
    intake_of: MakeIntake, store: JobStore, config: dict[str, object], field: str, message: str
) -> None:
    intake = intake_of(cluster=ClusterShape.of(2, largest_node=2, max_cpus=6))

    with pytest.raises(InvalidRequest) as refused:
        await intake.submit(submission(**config))

    assert refused.value.field == field
    assert message in str(refused.value)
    assert await rows(store) == []


async def test_a_tenant_with_a_full_queue_is_refused_and_nothing_is_written(
    intake_of: MakeIntake, store: JobStore
) -> None:
    intake = intake_of({"tenant-a": TenantLimits(max_queued=1)})
    job, _ = await intake.submit(submission())

    with pytest.raises(TooManyRequests):
        await intake.submit(submission())

    assert [r.job_id for r in await rows(store)] == [job.job_id]


async def test_concurrent_retries_pass_the_queue_limit_once(
    intake_of: MakeIntake, store: JobStore
) -> None:
    failed = await finished_job(store, JobEvent.FAIL)
    intake = intake_of({"tenant-a": TenantLimits(max_queued=1)})

    outcomes = await asyncio.gather(
        intake.retry(failed.job_id), intake.retry(failed.job_id), return_exceptions=True
    )

    [retried] = [o for o in outcomes if isinstance(o, JobRecord)]
    [refused] = [o for o in outcomes if not isinstance(o, JobRecord)]
    assert isinstance(refused, TooManyRequests)
    assert retried.retry_of == failed.job_id
    queued = [(r.job_id, r.retry_of) for r in await rows(store) if r.status is JobStatus.QUEUED]
    assert queued == [(retried.job_id, failed.job_id)]


async def test_a_completed_job_cannot_be_retried(intake_of: MakeIntake, store: JobStore) -> None:
    completed = await finished_job(store, JobEvent.COMPLETE)

    with pytest.raises(Conflict):
        await intake_of().retry(completed.job_id)

    assert [r.job_id for r in await rows(store)] == [completed.job_id]


class SlowStore(FeatureStore):
    """The demo sets, where one tenant's reads wait until the test releases them (a slow
    object store)."""

    def __init__(self, root: Location, slow_tenant: str) -> None:
        super().__init__(root)
        self.slow_tenant = slow_tenant
        self.reading = threading.Event()
        self.release = threading.Event()

    def for_tenant(self, tenant_id: str | None) -> FeatureStore:
        if tenant_id == self.slow_tenant:
            self.reading.set()
            assert self.release.wait(30)
        return super().for_tenant(tenant_id)


async def test_a_slow_feature_store_read_holds_up_no_other_tenants_submit(
    intake_of: MakeIntake, store: JobStore, features: FeatureStore
) -> None:
    slow = SlowStore(features.root, "tenant-slow")
    intake = intake_of(features=slow)
    waiting = asyncio.create_task(
        intake.submit(submission().model_copy(update={"tenant_id": "tenant-slow"}), "key-s")
    )
    try:
        assert await asyncio.to_thread(slow.reading.wait, 10)
        job, created = await asyncio.wait_for(intake.submit(submission(), "key-a"), 10)
        assert (job.tenant_id, created) == ("tenant-a", True)
    finally:
        slow.release.set()
    slow_job, _ = await waiting
    # The key still admits one job: a twin of the slow submit returns its job.
    twin = submission().model_copy(update={"tenant_id": "tenant-slow"})
    assert (await intake.submit(twin, "key-s"))[0].job_id == slow_job.job_id
    assert {r.tenant_id for r in await rows(store)} == {"tenant-a", "tenant-slow"}
