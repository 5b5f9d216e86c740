"""Every (status, event) pair of the job state machine."""

from __future__ import annotations

import itertools

import pytest

from actors.state import JobEvent, can_retry, transition
from domain.errors import IllegalTransition
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
