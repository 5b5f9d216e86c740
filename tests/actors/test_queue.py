"""The pure priority queue: priority first, FIFO within a priority, lazy removal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actors.queue import JobQueue

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def drain(queue: JobQueue) -> list[str]:
    out = []
    while (job_id := queue.pop()) is not None:
        out.append(job_id)
    return out


def test_priority_then_creation_time() -> None:
    queue = JobQueue()
    queue.push("low", -1, at(0))
    queue.push("normal-late", 0, at(5))
    queue.push("urgent", 2, at(9))
    queue.push("normal-early", 0, at(1))
    queue.push("high", 1, at(3))
    assert queue.ordered() == ["urgent", "high", "normal-early", "normal-late", "low"]
    assert drain(queue) == ["urgent", "high", "normal-early", "normal-late", "low"]


def test_equal_times_keep_insertion_order() -> None:
    queue = JobQueue()
    for name in "abcde":
        queue.push(name, 0, T0)
    assert drain(queue) == list("abcde")


def test_remove_and_duplicates() -> None:
    queue = JobQueue()
    queue.push("a", 0, at(0))
    queue.push("a", 2, at(0))
    queue.push("b", 0, at(1))
    assert len(queue) == 2
    assert "a" in queue
    assert queue.remove("a")
    assert not queue.remove("a")
    assert "a" not in queue
    assert drain(queue) == ["b"]
    assert queue.pop() is None


def test_removed_job_can_be_queued_again() -> None:
    queue = JobQueue()
    queue.push("a", 0, at(0))
    queue.remove("a")
    queue.push("a", 1, at(2))
    queue.push("b", 0, at(1))
    assert drain(queue) == ["a", "b"]


def test_a_stale_entry_never_pops_a_requeued_job_early() -> None:
    queue = JobQueue()
    queue.push("a", 2, at(0))
    queue.remove("a")
    queue.push("a", -1, at(5))
    queue.push("b", 0, at(1))
    assert queue.ordered() == ["b", "a"]
    assert drain(queue) == ["b", "a"]
