"""The mirror's failed items wait longer after each failure, up to a bound, and only
they wait."""

from __future__ import annotations

from actors.mirror_retries import Retries


def test_a_failed_item_waits_longer_each_time_and_a_success_forgets_it() -> None:
    now = [100.0]
    retries = Retries(first_wait=1, max_wait=5, clock=lambda: now[0])
    waits = []
    for _ in range(5):
        failure = retries.failed("model", "m1")
        waits.append(failure.retry_at - now[0])
    assert waits == [1, 2, 4, 5, 5]
    assert retries.attempts("model", "m1") == 5
    assert retries.waiting("model") == {"m1"}
    assert retries.waiting("job") == set()  # other kinds, and other items, do not wait
    now[0] += 5
    assert retries.waiting("model") == set()  # due again
    retries.succeeded("model", "m1")
    assert (retries.attempts("model", "m1"), len(retries)) == (0, 0)
