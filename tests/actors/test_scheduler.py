"""A schedule's fire is recorded once a job exists for it, or the job could never be made:
a fire the service could not take yet (database unavailable, the tenant's queue full) is
tried again at the next poll, with the same idempotency key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from actors.scheduler import Scheduler, fire_key
from db.jobs import JobStore
from db.records import NewSchedule
from db.schedules import ScheduleStore
from domain.errors import InvalidRequest, ServiceUnavailable, TooManyRequests, TrainingError
from tests.actors.intakes import CREATED, FIRST_FIRE, Intake
from tests.databases import BACKENDS, migrated_store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store(request.param, tmp_path) as store:
        yield store


async def nightly(store: JobStore) -> str:
    schedules = ScheduleStore(store.database)
    job = {
        "tenant_id": "tenant-a",
        "model_type": "forecast",
        "model_name": "nightly",
        "config": {"feature_set": "forecast_basic", "target_variable": "load_kw"},
    }
    created = await schedules.create(
        NewSchedule("tenant-a", "nightly", "0 2 * * *", "UTC", job, 86_400.0, True, "allow"),
        CREATED,
    )
    return created.schedule_id


@pytest.mark.parametrize(
    "transient", [ServiceUnavailable("the database"), TooManyRequests("queue full", 30)]
)
async def test_a_fire_the_service_could_not_take_yet_is_tried_again(
    store: JobStore, transient: TrainingError
) -> None:
    schedule_id = await nightly(store)
    intake = Intake(store)
    scheduler = Scheduler(ScheduleStore(store.database), intake.submit)
    intake.failure = transient
    assert await scheduler.fire_due(FIRST_FIRE + timedelta(seconds=5)) == []
    intake.failure = None
    [started] = await scheduler.fire_due(FIRST_FIRE + timedelta(minutes=1))
    assert intake.jobs[fire_key(schedule_id, FIRST_FIRE)].job_id == started
    assert await scheduler.fire_due(FIRST_FIRE + timedelta(minutes=2)) == []  # recorded


async def test_a_fire_that_could_never_make_a_job_is_recorded(store: JobStore) -> None:
    await nightly(store)
    intake = Intake(store)
    scheduler = Scheduler(ScheduleStore(store.database), intake.submit)
    intake.failure = InvalidRequest("config.start_date", "after the last row")
    assert await scheduler.fire_due(FIRST_FIRE + timedelta(seconds=5)) == []
    intake.failure = None
    assert await scheduler.fire_due(FIRST_FIRE + timedelta(minutes=1)) == []
    assert intake.jobs == {}


async def test_a_schedule_that_cannot_fire_stops_none_of_the_others(store: JobStore) -> None:
    """Stored before crons were held to ever firing (``0 0 30 2 *`` parses): the schedules
    after it still fire."""
    schedule_id = await nightly(store)
    job = {**(await ScheduleStore(store.database).get(schedule_id)).job}
    await ScheduleStore(store.database).create(
        NewSchedule(
            "tenant-a", "a-february-30th", "0 0 30 2 *", "UTC", job, 86_400.0, True, "allow"
        ),
        CREATED,
    )
    intake = Intake(store)
    scheduler = Scheduler(ScheduleStore(store.database), intake.submit)
    [started] = await scheduler.fire_due(FIRST_FIRE + timedelta(seconds=5))
    assert intake.jobs[fire_key(schedule_id, FIRST_FIRE)].job_id == started
