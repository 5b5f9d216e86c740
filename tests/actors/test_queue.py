"""The pure queue: priority first, tenants round-robin within a priority, FIFO per tenant."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from actors.queue import JobQueue

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def drain(queue: JobQueue, blocked: frozenset[str] = frozenset()) -> list[str]:
    """Take jobs as a dispatch pass does, one at a time: the first in queue order whose
    tenant is not ``blocked``."""
    out = []
    while ready := [j for j in queue.ordered() if queue.tenant_of(j) not in blocked]:
        queue.take(ready[0])
        out.append(ready[0])
    return out


def test_priority_then_creation_time() -> None:
    queue = JobQueue()
    queue.push("low", "t", -1, at(0))
    queue.push("normal-late", "t", 0, at(5))
    queue.push("urgent", "t", 2, at(9))
    queue.push("normal-early", "t", 0, at(1))
    queue.push("high", "t", 1, at(3))
    assert queue.ordered() == ["urgent", "high", "normal-early", "normal-late", "low"]
    assert drain(queue) == ["urgent", "high", "normal-early", "normal-late", "low"]


def test_equal_times_keep_insertion_order() -> None:
    queue = JobQueue()
    for name in "abcde":
        queue.push(name, "t", 0, T0)
    assert drain(queue) == list("abcde")


def test_tenants_take_turns_within_a_priority() -> None:
    queue = JobQueue()
    for n in range(1, 4):
        queue.push(f"a{n}", "a", 0, at(n))
    queue.push("b1", "b", 0, at(10))
    queue.push("c1", "c", 0, at(11))
    queue.push("urgent-a", "a", 2, at(20))
    assert queue.ordered() == ["urgent-a", "a1", "b1", "c1", "a2", "a3"]
    assert queue.ahead_of("c1") == (3, 1, True)
    assert queue.ahead_of("c1", tenant_only=True) == (0, 0, True), "none of its own"
    assert queue.ahead_of("a2", tenant_only=True) == (2, 1, True)
    assert queue.ahead_of("urgent-a", tenant_only=True) == (0, 0, False)
    assert queue.queued_of("a") == 4
    assert drain(queue) == ["urgent-a", "a1", "b1", "c1", "a2", "a3"]


def test_turns_continue_after_new_arrivals() -> None:
    queue = JobQueue()
    for n in range(1, 4):
        queue.push(f"a{n}", "a", 0, at(n))
    queue.take("a1")
    queue.push("b1", "b", 0, at(10))
    assert drain(queue) == ["b1", "a2", "a3"]


def test_blocked_tenants_are_skipped_not_dropped() -> None:
    queue = JobQueue()
    queue.push("a1", "a", 1, at(0))
    queue.push("b1", "b", 0, at(1))
    assert drain(queue, blocked=frozenset({"a"})) == ["b1"]
    assert len(queue) == 1
    assert drain(queue) == ["a1"]


def test_remove_and_duplicates() -> None:
    queue = JobQueue()
    queue.push("a", "t", 0, at(0))
    queue.push("a", "t", 2, at(0))
    queue.push("b", "t", 0, at(1))
    assert len(queue) == 2
    assert "a" in queue
    assert queue.remove("a")
    assert not queue.remove("a")
    assert "a" not in queue
    assert drain(queue) == ["b"]
    assert queue.ordered() == []


def test_a_requeued_job_goes_back_to_its_place_by_creation_time() -> None:
    queue = JobQueue()
    queue.push("new", "t", 0, at(5))
    queue.push("interrupted", "t", 0, at(1))
    assert drain(queue) == ["interrupted", "new"]


def test_removed_job_can_be_queued_again() -> None:
    queue = JobQueue()
    queue.push("a", "t", 0, at(0))
    queue.remove("a")
    queue.push("a", "t", 1, at(2))
    queue.push("b", "t", 0, at(1))
    assert drain(queue) == ["a", "b"]


def test_a_job_taken_out_of_turn_serves_its_tenant() -> None:
    """A job that passes a waiting one (it fits, the other waits for CPUs) is taken out
    of turn; its tenant then waits its turn as if it had been served in order."""
    queue = JobQueue()
    queue.push("a1", "a", 0, at(1))
    queue.push("b1", "b", 0, at(2))
    queue.push("b2", "b", 0, at(3))
    queue.take("b1")
    assert queue.ordered() == ["a1", "b2"]


def test_turns_outlive_a_priority_that_empties() -> None:
    """A tenant just served waits behind one not served since, though the queue held none
    of that priority in between."""
    queue = JobQueue()
    queue.push("a1", "a", 0, at(1))
    queue.push("b1", "b", 0, at(2))
    assert drain(queue) == ["a1", "b1"]
    queue.push("b2", "b", 0, at(3))
    queue.push("a2", "a", 0, at(4))
    assert queue.ordered() == ["a2", "b2"], "b was served last"
    assert drain(queue) == ["a2", "b2"]


def test_the_order_is_the_order_jobs_are_taken_in() -> None:
    """``ordered`` (one pass over the tenants' heads) agrees with taking its head again
    and again, turns carried over, on random queues of several tenants and priorities."""
    rng = random.Random(7)
    for _ in range(50):
        queue = JobQueue()
        for number in range(rng.randint(1, 40)):
            tenant, priority = rng.choice("abcd"), rng.choice((0, 0, 1, -1))
            queue.push(f"j{number}", tenant, priority, at(rng.randint(0, 5)))
            if rng.random() < 0.2:
                queue.take(queue.ordered()[rng.randrange(len(queue))])
        expected = queue.ordered()
        assert drain(queue) == expected
