"""Fires cron schedules: each due schedule starts one job for its latest missed fire time.

A fire submits with the idempotency key ``schedule:<id>:<fire time>`` and then records the
fire time; if the orchestrator dies between the two, the next pass finds the same fire,
and the key returns the job already made instead of a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from actors.submission import JobSubmission
from db.idempotency import SCHEDULE_KEY_PREFIX
from db.records import JobRecord, ScheduleRecord
from db.schedules import ScheduleStore
from domain.cron import latest_fire
from domain.errors import ServiceUnavailable, TooManyRequests, TrainingError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledFire:
    """The schedule and the logical time a submission fires for."""

    schedule_id: str
    fire_time: datetime


#: Submits a job once per idempotency key: ``Intake.submit``.
Submit = Callable[[JobSubmission, str, ScheduledFire], Awaitable[tuple[JobRecord, bool]]]


def fire_key(schedule_id: str, fire_time: datetime) -> str:
    return f"{SCHEDULE_KEY_PREFIX}{schedule_id}:{fire_time.isoformat()}"


def submission_for(schedule: ScheduleRecord, fire_time: datetime) -> JobSubmission:
    """The schedule's job, training on [fire time - window, fire time)."""
    body = dict(schedule.job)
    start = fire_time - timedelta(seconds=schedule.window_seconds)
    config = {**body["config"], "start_date": start.isoformat(), "end_date": fire_time.isoformat()}
    return JobSubmission.model_validate({**body, "config": config})


class Scheduler:
    def __init__(self, schedules: ScheduleStore, submit: Submit) -> None:
        self._schedules = schedules
        self._submit = submit

    async def fire_due(self, now: datetime) -> list[str]:
        """Fire every enabled schedule that is due at ``now``; returns the jobs started."""
        started = []
        for schedule in await self._schedules.search():
            if not schedule.enabled:
                continue
            try:
                job_id = await self._fire_if_due(schedule, now)
            except (ServiceUnavailable, TooManyRequests) as exc:
                # Not recorded: the next poll tries the same fire again (its idempotency
                # key makes one job of it), unless a newer fire is due by then.
                logger.warning("schedule %s waits: %s", schedule.schedule_id, exc)
                continue
            except Exception:  # one broken schedule must not stop the ones after it
                logger.exception("schedule %s could not be fired", schedule.schedule_id)
                continue
            if job_id is not None:
                started.append(job_id)
        return started

    async def _fire_if_due(self, schedule: ScheduleRecord, now: datetime) -> str | None:
        """Fire the schedule's latest fire time in (its last fire, ``now``] and record it."""
        after = schedule.last_fire_at or schedule.created_at
        fire_time = latest_fire(schedule.cron, schedule.timezone, after, now)
        if fire_time is None:
            return None
        job_id = await self._fire(schedule, fire_time)
        await self._schedules.record_fire(schedule.schedule_id, fire_time)
        return job_id

    async def _fire(self, schedule: ScheduleRecord, fire_time: datetime) -> str | None:
        name = f"schedule {schedule.name!r} ({schedule.schedule_id}) at {fire_time.isoformat()}"
        if schedule.concurrency_policy == "forbid":
            active = await self._schedules.active_runs(schedule.schedule_id)
            if active:
                logger.info("%s skipped: its previous run is still queued or running", name)
                return None
        try:
            submission = submission_for(schedule, fire_time)
            key = fire_key(schedule.schedule_id, fire_time)
            job, _created = await self._submit(
                submission, key, ScheduledFire(schedule.schedule_id, fire_time)
            )
        except (ServiceUnavailable, TooManyRequests):
            raise
        except (TrainingError, ValueError) as exc:
            logger.warning("%s could not start a job: %s", name, exc)
            return None
        logger.info("%s started job %s", name, job.job_id)
        return job.job_id
