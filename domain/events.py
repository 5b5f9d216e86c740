"""Job events: the status each one leads to (a pure, total state machine) and what else it
does to a job.

queued ──START──► running ──COMPLETE──► completed
  │                 │ ├────FAIL──────► failed
  │                 │ └───REQUEUE────► queued   (its worker or the orchestrator died)
  └────CANCEL───────┴─────CANCEL─────► cancelled
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.errors import IllegalTransition
from domain.jobs import JobStatus


class JobEvent(StrEnum):
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    REQUEUE = "requeue"


_TRANSITIONS: dict[tuple[JobStatus, JobEvent], JobStatus] = {
    (JobStatus.QUEUED, JobEvent.START): JobStatus.RUNNING,
    (JobStatus.QUEUED, JobEvent.CANCEL): JobStatus.CANCELLED,
    (JobStatus.RUNNING, JobEvent.COMPLETE): JobStatus.COMPLETED,
    (JobStatus.RUNNING, JobEvent.FAIL): JobStatus.FAILED,
    (JobStatus.RUNNING, JobEvent.CANCEL): JobStatus.CANCELLED,
    (JobStatus.RUNNING, JobEvent.REQUEUE): JobStatus.QUEUED,
}


def transition(status: JobStatus, event: JobEvent) -> JobStatus:
    """Return the status a job in ``status`` moves to on ``event``.

    Raises:
        IllegalTransition: the event is not allowed in that status.
    """
    try:
        return _TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(f"cannot {event.value} a job that is {status.value}") from None


def can_retry(status: JobStatus) -> bool:
    """Only jobs that ended without success may be retried."""
    return status in (JobStatus.FAILED, JobStatus.CANCELLED)


class EventTarget(Protocol):
    """The fields of a job that events change (a job's database row has them)."""

    status: str
    attempts: int
    progress: float
    stage: str | None
    error_message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime


def apply_event(job: EventTarget, event: JobEvent, now: datetime) -> JobStatus:
    """Move ``job`` on ``event`` at ``now``: its status, attempts, progress and times.

    A start counts an attempt and clears the last one's stage and error; a re-queue forgets
    the lost attempt's start; a finished job gets its ``completed_at``.

    Raises:
        IllegalTransition: the event is not allowed in the job's status.
    """
    status = transition(JobStatus(job.status), event)
    job.status = status.value
    job.updated_at = now
    if event is JobEvent.START:
        job.attempts += 1
        job.started_at = now
        job.progress = 0.0
        job.stage = None
        job.error_message = None
    elif event is JobEvent.REQUEUE:
        job.started_at = None
        job.progress = 0.0
        job.stage = None
    elif event is JobEvent.COMPLETE:
        job.progress = 1.0
    if status.is_finished():
        job.completed_at = now
    return status
