"""Every (status, event) pair of the job state machine, and what events do to a job."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import IllegalTransition
from domain.events import JobEvent, apply_event, can_retry, transition
from domain.jobs import JobStatus

Q, R, C, F, X = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)
LEGAL = {
    (Q, JobEvent.START): R,
    (Q, JobEvent.CANCEL): X,
    (R, JobEvent.COMPLETE): C,
    (R, JobEvent.FAIL): F,
    (R, JobEvent.CANCEL): X,
    (R, JobEvent.REQUEUE): Q,
}


@pytest.mark.parametrize(("status", "event"), list(itertools.product(JobStatus, JobEvent)))
def test_every_pair(status: JobStatus, event: JobEvent) -> None:
    if (status, event) in LEGAL:
        assert transition(status, event) is LEGAL[(status, event)]
    else:
        with pytest.raises(IllegalTransition, match=f"cannot {event.value} a job that is {status}"):
            transition(status, event)


def test_finished_states_accept_nothing() -> None:
    for status in (C, F, X):
        assert status.is_finished()
        for event in JobEvent:
            with pytest.raises(IllegalTransition):
                transition(status, event)
    assert not Q.is_finished()
    assert not R.is_finished()


def test_only_unsuccessful_jobs_can_be_retried() -> None:
    assert {s for s in JobStatus if can_retry(s)} == {F, X}


T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Job:
    status: str = "queued"
    attempts: int = 0
    progress: float = 0.0
    stage: str | None = None
    error_message: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime = T0


def test_a_start_counts_an_attempt_and_clears_the_last_ones_traces() -> None:
    job = Job(status="queued", attempts=1, progress=0.4, stage="train", error_message="lost")
    assert apply_event(job, JobEvent.START, T0) is R
    assert (job.status, job.attempts, job.started_at, job.updated_at) == ("running", 2, T0, T0)
    assert (job.progress, job.stage, job.error_message) == (0.0, None, None)
    assert job.completed_at is None


def test_a_requeue_forgets_the_lost_attempts_start_but_not_its_count() -> None:
    job = Job(status="running", attempts=1, progress=0.7, stage="train", started_at=T0)
    later = T0 + timedelta(minutes=5)
    assert apply_event(job, JobEvent.REQUEUE, later) is Q
    assert (job.started_at, job.progress, job.stage, job.attempts) == (None, 0.0, None, 1)
    assert (job.updated_at, job.completed_at) == (later, None)


@pytest.mark.parametrize(("event", "done"), [(JobEvent.COMPLETE, C), (JobEvent.FAIL, F)])
def test_a_finished_job_gets_its_completion_time(event: JobEvent, done: JobStatus) -> None:
    job = Job(status="running", attempts=1, progress=0.7, started_at=T0)
    later = T0 + timedelta(minutes=5)
    assert apply_event(job, event, later) is done
    assert (job.status, job.completed_at, job.started_at) == (done.value, later, T0)
    assert job.progress == (1.0 if event is JobEvent.COMPLETE else 0.7)


def test_an_illegal_event_changes_nothing() -> None:
    job = Job(status="completed", attempts=1, progress=1.0, completed_at=T0)
    before = Job(**vars(job))
    with pytest.raises(IllegalTransition):
        apply_event(job, JobEvent.START, T0 + timedelta(hours=1))
    assert job == before
