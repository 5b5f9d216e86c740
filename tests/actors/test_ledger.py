"""The ledger books each group on the nodes first fit predicts, then where Ray put it."""

from __future__ import annotations

from actors.cluster import ClusterShape
from actors.ledger import Group, Ledger, best_fit


def test_first_fit_places_the_largest_bundles_first_on_the_tightest_node() -> None:
    free = {"a": 1, "b": 4, "c": 2}
    assert best_fit([1, 2, 4], free) == ("a", "c", "b")
    assert best_fit([2, 2], free) == ("c", "b")
    assert best_fit([2, 2], free, spread=True) == ("b", "c"), "the most room: apart"
    assert best_fit([5], free) is None
    assert best_fit([], free) == ()


def test_free_cpus_follow_the_groups_booked_placed_and_dropped() -> None:
    ledger = Ledger(ClusterShape.of(2, 2))
    ledger.book(Group("job-a:0", "job-a", (2,), ("node-0",)))
    ledger.book(Group("job-a:1", "job-a", (1,), ("node-1",), slot=True))
    assert ledger.free() == {"node-0": 0, "node-1": 1}
    assert (ledger.reserved, ledger.held("job-a")) == (3, 3)
    assert [g.name for g in ledger.slots_of("job-a")] == ["job-a:1"]

    ledger.placed("job-a:0", ("node-1",))  # Ray chose otherwise
    assert ledger.free() == {"node-0": 2, "node-1": 0}
    assert ledger.free(counting=lambda g: g.slot) == {"node-0": 2, "node-1": 1}
    assert ledger.fit([2]) == ("node-0",)
    assert ledger.fits_empty([2, 2])
    assert not ledger.fits_empty([3])

    assert [g.name for g in ledger.groups_of("job-a")] == ["job-a:0", "job-a:1"]
    for group in ledger.groups_of("job-a"):
        ledger.drop(group.name)
    assert ledger.free() == {"node-0": 2, "node-1": 2}
    ledger.placed("job-a:0", ("node-0",))  # placed after it was dropped: stays dropped
    assert ledger.reserved == 0


def test_a_node_that_left_frees_nothing_and_holds_nothing() -> None:
    ledger = Ledger(ClusterShape.of(2, 2))
    ledger.book(Group("g", "job", (2,), ("node-1",), placed=True))
    assert ledger.update(ClusterShape({"node-0": 2})) is True
    assert ledger.free() == {"node-0": 2}
    assert ledger.update(ClusterShape({"node-0": 2})) is False
