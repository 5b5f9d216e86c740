"""The job status state machine: pure, total and tiny.

queued ──START──► running ──COMPLETE──► completed
  │                 │ ├────FAIL──────► failed
  │                 │ └───REQUEUE────► queued   (its worker or the orchestrator died)
  └────CANCEL───────┴─────CANCEL─────► cancelled
"""

from __future__ import annotations

from enum import StrEnum

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
