"""Capacity follows an autoscaling cluster: six one-CPU jobs at once on a 2-CPU head with
up to two 2-CPU workers. The orchestrator asks the autoscaler for the queued jobs' CPUs,
workers come up, every job completes once and none is refused; once idle the workers
are removed, and ``/ai/training/stats`` shows capacity rising and falling.

The scenario (``tests.cluster.autoscaling``) runs in a subprocess because it needs a Ray
cluster of its own; this test only reads what it observed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.scenario import observe

SCENARIO_TIMEOUT_SECONDS = 420
#: The scenario runs in the module's fixture: the first test's timeout must cover it.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(SCENARIO_TIMEOUT_SECONDS + 60)]


@pytest.fixture(scope="module")
def observed() -> dict[str, Any]:
    return observe("tests.cluster.autoscaling", SCENARIO_TIMEOUT_SECONDS)


def test_six_jobs_complete_once_and_none_is_refused(observed: dict[str, Any]) -> None:
    assert observed["refused"] == []
    jobs = observed["jobs"]
    assert len(jobs) == 6
    assert all(j["status"] == "completed" for j in jobs), [j["error"] for j in jobs]
    assert [j["attempts"] for j in jobs] == [1] * 6
    assert [j["models"] for j in jobs] == [1] * 6


def test_workers_are_added_then_removed_once_idle(observed: dict[str, Any]) -> None:
    workers = [w for _, w, _ in observed["samples"]]
    assert workers[0] == 0
    assert max(workers) == 2
    assert workers[-1] == 0


def test_stats_show_capacity_rising_and_falling(observed: dict[str, Any]) -> None:
    capacity = [s["total_capacity"] for _, _, s in observed["samples"]]
    peak = capacity.index(max(capacity))
    assert capacity[0] == 2
    assert capacity[peak] == 6
    assert capacity[-1] == 2
    assert {s["max_capacity"] for _, _, s in observed["samples"]} == {6}
    assert max(s["queued_jobs"] for _, _, s in observed["samples"]) > 0
