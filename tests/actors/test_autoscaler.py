"""The orchestrator asks the autoscaler for exactly the bundles of what runs and what
waits, within the cluster's maximum; the decisions, without Ray."""

from __future__ import annotations

import pytest

from actors.autoscaler import AutoscalerRequests, Bundles, Wanted, requested_bundles


def cpus(bundles: Bundles) -> list[float]:
    return [b["CPU"] for b in bundles]


def jobs(*bundles: list[int]) -> list[Wanted]:
    return [Wanted(tuple(b)) for b in bundles]


@pytest.mark.parametrize(
    ("running", "queued", "max_cpus", "max_jobs", "expected"),
    [
        ([[1], [1]], [[1]] * 4, 6, None, [1] * 6),  # six one-CPU jobs, two running
        ([[1], [1]], [[1]] * 10, 6, None, [1] * 6),  # never beyond the maximum
        ([[2]], [[2, 2], [1]], 6, None, [2, 2, 2]),  # queue order first; the 1 no longer fits
        ([[2]], [[2, 2], [1]], 7, None, [2, 2, 2, 1]),
        ([[4]], [[3], [2]], 6, None, [4, 2]),  # a smaller job further back still fits
        ([[1], [1]], [[1]] * 3, 6, 3, [1, 1, 1]),  # max_concurrent_jobs 3: no CPUs for a 4th
        ([[1], [1]], [], 6, None, []),  # nothing waits: no request
        ([[1, 1, 1]], [[2, 2, 2]], 9, None, [1, 1, 1, 2, 2, 2]),  # each bundle, not a sum
    ],
)
def test_the_request_is_the_bundles_of_running_and_queued_jobs_within_the_maximum(
    running: list[list[int]],
    queued: list[list[int]],
    max_cpus: int,
    max_jobs: int | None,
    expected: list[int],
) -> None:
    requested = requested_bundles(jobs(*running), jobs(*queued), max_cpus, max_jobs)
    assert cpus(requested) == expected


def test_batch_forecasts_are_asked_for_beyond_the_operators_cap() -> None:
    """The cap counts jobs only: a forecast waiting (or holding CPUs) beside two running
    jobs under a cap of two is still asked for."""
    forecast = Wanted((1, 1), counted=False)
    requested = requested_bundles([*jobs([2], [2]), forecast], [forecast], 8, 2)
    assert cpus(requested) == [2, 2, 1, 1, 1, 1]
    assert cpus(requested_bundles(jobs([2], [2]), jobs([2]), 8, 2)) == [2, 2]


def test_requests_are_sent_when_they_change_and_cleared_when_the_queue_drains() -> None:
    sent: list[Bundles] = []
    requests = AutoscalerRequests(sent.append)
    assert requests.last is None

    one = Wanted((1,))
    assert requests.update([], [], 6, 6) is True  # the first always: clears an old request
    assert requests.update([one, one], [one] * 4, 6, 6) is True
    assert requests.update([one, one], [one] * 4, 6, 6) is False
    assert requests.update([one] * 4, [one] * 2, 6, 6) is False  # same shape: not sent again
    assert requests.update([one] * 6, [], 6, 6) is True  # drained: cleared

    assert [cpus(b) for b in sent] == [[], [1] * 6, []]
    assert requests.last == []


def test_a_failed_request_is_sent_again() -> None:
    attempts: list[Bundles] = []

    def flaky(bundles: Bundles) -> None:
        attempts.append(bundles)
        if len(attempts) == 1:
            raise ConnectionError("GCS unreachable")

    requests = AutoscalerRequests(flaky)
    with pytest.raises(ConnectionError):
        requests.update(jobs([1]), jobs([1]), 4, 4)
    assert requests.update(jobs([1]), jobs([1]), 4, 4) is True
    assert len(attempts) == 2
