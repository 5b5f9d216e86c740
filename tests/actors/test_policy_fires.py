"""A retrain policy's scheduled fire is checked off once its retrain exists, or could never
be made: a fire the service could not take yet (database unavailable, the tenant's queue
full) is tried again at the next check, with the same idempotency key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from actors.policies import RetrainPolicies
from db.jobs import JobStore
from db.monitoring import MonitorStore
from db.policies import NewPolicy, PolicyStore
from db.records import NewLog
from db.registry import ModelRegistry
from domain.errors import InvalidRequest, ServiceUnavailable, TooManyRequests, TrainingError
from domain.events import JobEvent
from pipeline.settings import PipelineSettings
from tests.actors.intakes import CREATED, FIRST_FIRE, Intake
from tests.databases import BACKENDS, migrated_store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store(request.param, tmp_path) as store:
        yield store


async def nightly_retrain(
    store: JobStore, tmp_path: Path, cooldown: timedelta = timedelta(0)
) -> tuple[RetrainPolicies, PolicyStore, Intake, str]:
    policies = PolicyStore(store.database)
    job = {
        "tenant_id": "tenant-a",
        "model_type": "forecast",
        "model_name": "nightly",
        "config": {"feature_set": "forecast_basic", "target_variable": "load_kw"},
    }
    rules = {"cron": "0 2 * * *", "timezone": "UTC"}
    created = await policies.create(
        NewPolicy(
            "tenant-a", "nightly", job, rules, cooldown.total_seconds(), 10, None, False, True
        ),
        CREATED,
    )
    intake = Intake(store)

    async def write_logs(logs: list[NewLog]) -> None:
        pass

    retrains = RetrainPolicies(
        policies,
        MonitorStore(store.database),
        ModelRegistry(store.database),
        PipelineSettings(data_dir=tmp_path),
        submit=intake.submit,
        write_logs=write_logs,
    )
    return retrains, policies, intake, created.policy_id


@pytest.mark.parametrize(
    "transient", [ServiceUnavailable("the database"), TooManyRequests("queue full", 30)]
)
async def test_a_fire_the_service_could_not_take_yet_is_tried_again(
    store: JobStore, tmp_path: Path, transient: TrainingError
) -> None:
    retrains, policies, intake, policy_id = await nightly_retrain(store, tmp_path)
    intake.failure = transient
    assert await retrains.check(FIRST_FIRE + timedelta(seconds=5)) == []
    assert (await policies.get(policy_id)).checked_at == CREATED  # the fire still due

    intake.failure = None
    retried = FIRST_FIRE + timedelta(minutes=1)
    [started] = await retrains.check(retried)
    assert [job.job_id for job in intake.jobs.values()] == [started]
    [trigger] = (await policies.triggers(policy_id, 1, 10)).items
    assert trigger.evidence["fire_time"] == FIRST_FIRE.isoformat()
    assert (await policies.get(policy_id)).checked_at == retried


async def test_a_fire_that_could_never_make_a_job_is_checked_off(
    store: JobStore, tmp_path: Path
) -> None:
    retrains, policies, intake, policy_id = await nightly_retrain(store, tmp_path)
    intake.failure = InvalidRequest("config.start_date", "after the last row")
    checked = FIRST_FIRE + timedelta(seconds=5)
    assert await retrains.check(checked) == []
    assert (await policies.get(policy_id)).checked_at == checked
    intake.failure = None
    assert await retrains.check(FIRST_FIRE + timedelta(minutes=1)) == []
    assert intake.jobs == {}


async def test_a_fire_held_back_by_the_cooldown_is_owed_until_the_cooldown_ends(
    store: JobStore, tmp_path: Path
) -> None:
    retrains, policies, _, policy_id = await nightly_retrain(
        store, tmp_path, cooldown=timedelta(days=1)
    )
    [first] = await retrains.check(FIRST_FIRE + timedelta(hours=2))  # the service was down
    await store.transition(first, JobEvent.CANCEL)  # that retrain is over
    second_fire = FIRST_FIRE + timedelta(days=1)
    assert await retrains.check(second_fire + timedelta(seconds=20)) == []  # 22 hours on
    [second] = await retrains.check(second_fire + timedelta(hours=1, minutes=56))
    assert second != first
    trigger = (await policies.triggers(policy_id, 1, 1)).items[0]
    assert trigger.evidence["fire_time"] == second_fire.isoformat(), "the owed fire"


async def test_a_daily_fire_keeps_its_time_under_a_days_cooldown(
    store: JobStore, tmp_path: Path
) -> None:
    """Checks run a minute or so apart: a day's cooldown, measured from when the last
    retrain started, forgives the seconds by which the next fire comes short of it."""
    retrains, _, intake, _ = await nightly_retrain(store, tmp_path, cooldown=timedelta(days=1))
    started = []
    for day, seconds in enumerate([45, 20, 50, 5]):  # each check a few seconds off the fire
        [job_id] = await retrains.check(FIRST_FIRE + timedelta(days=day, seconds=seconds))
        await store.transition(job_id, JobEvent.CANCEL)
        started.append(job_id)
    assert len(set(started)) == 4 == len(intake.jobs)
