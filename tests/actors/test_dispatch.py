"""Admission by resources, decided without Ray: who starts, who passes a waiting job,
what an urgent job takes back and what a search gets back (``actors.dispatch``)."""

from __future__ import annotations

from collections.abc import Sequence

from actors.cluster import ClusterShape
from actors.dispatch import Candidate, Holder, Plan, Rules, plan
from actors.ledger import Group, Ledger
from domain.jobs import JobPriority
from pipeline.resources import Demand

LOW, NORMAL, HIGH, URGENT = (int(p) for p in JobPriority)
#: Three 2-CPU workers (the head holds none).
THREE_NODES = ClusterShape.of(2, 2, 2)
DEFAULT_RULES = Rules()


def job(job_id: str, *bundles: int, slots: int = 0, priority: int = NORMAL) -> Candidate:
    return Candidate(job_id, f"tenant-{job_id}", priority, Demand(bundles, slots=slots))


def hold(
    ledger: Ledger, holder: str, *nodes_cpus: tuple[str, int], slots: Sequence[str] = ()
) -> None:
    """``holder`` holds a group of bundles on ``nodes_cpus`` and a slot on each of ``slots``."""
    nodes = tuple(node for node, _ in nodes_cpus)
    ledger.book(
        Group(f"{holder}:gang", holder, tuple(c for _, c in nodes_cpus), nodes, placed=True)
    )
    for n, node in enumerate(slots):
        ledger.book(Group(f"{holder}:slot{n}", holder, (1,), (node,), slot=True, placed=True))


def run(
    queue: Sequence[Candidate],
    ledger: Ledger,
    running: Sequence[Holder] = (),
    rules: Rules = DEFAULT_RULES,
    limit: int | None = None,
) -> Plan:
    counts = {f"tenant-{h.job_id}": 1 for h in running}
    return plan(
        queue,
        running,
        ledger,
        lambda _tenant, running: limit is None or running < limit,
        counts,
        rules,
    )


def started(decided: Plan) -> list[str]:
    return [start.job_id for start in decided.starts]


def test_jobs_start_in_queue_order_while_their_bundles_fit() -> None:
    ledger = Ledger(THREE_NODES)
    decided = run([job("a", 2), job("b", 1), job("c", 1), job("d", 2), job("e", 1)], ledger)

    assert started(decided) == ["a", "b", "c", "d"]
    assert decided.blocked is not None
    assert decided.blocked.job_id == "e"
    nodes = {start.job_id: start.nodes for start in decided.starts}
    assert len({nodes["a"][0], nodes["d"][0]}) == 2, "the 2-CPU bundles take whole nodes"
    assert nodes["b"] == nodes["c"], "the 1-CPU ones pack the third"


def test_a_smaller_job_passes_a_waiting_one_only_where_it_cannot_delay_it() -> None:
    """A 4-CPU job (two 2-CPU bundles) waits while two jobs hold a CPU on two nodes: a
    1-CPU job behind it may start on a node it will never need whole (the 4 still fit
    once the running jobs end); a second one may not, and neither may a whole-cluster
    job pass a smaller one."""
    ledger = Ledger(THREE_NODES)
    hold(ledger, "r1", ("node-0", 1))
    hold(ledger, "r2", ("node-1", 1))
    decided = run([job("big", 2, 2), job("small", 1), job("other", 1)], ledger)

    assert decided.blocked is not None
    assert decided.blocked.job_id == "big"
    assert started(decided) == ["small"]
    assert decided.starts[0].nodes == ("node-0",)
    assert decided.starts[0].passed
    assert run([job("all", 2, 2, 2), job("small", 1)], ledger).starts == []


def test_a_job_that_passed_counts_against_the_waiting_one_until_it_ends() -> None:
    ledger = Ledger(THREE_NODES)
    hold(ledger, "r1", ("node-0", 1))
    hold(ledger, "r2", ("node-1", 1))
    hold(ledger, "passer", ("node-0", 1))
    running = [Holder("r1", NORMAL), Holder("r2", NORMAL), Holder("passer", NORMAL, passed=True)]
    decided = run([job("big", 2, 2), job("small", 1)], ledger, running)
    assert started(decided) == [], "node-1 is the last the waiting job can have whole"


def test_a_job_no_alive_node_holds_waits_for_its_node_without_holding_others_back() -> None:
    ledger = Ledger(ClusterShape.of(2, 2, largest_node=8, max_cpus=12))
    decided = run([job("wide", 8), job("big", 2, 2), job("small", 1)], ledger)

    assert started(decided) == ["big"]
    assert not decided.starts[0].passed, "a job waiting for a node of its own blocks nobody"
    assert decided.blocked is not None
    assert decided.blocked.job_id == "small", "the first job the alive nodes could hold"


def test_tenant_limits_and_the_operators_cap_hold_jobs_that_fit() -> None:
    ledger = Ledger(THREE_NODES)
    capped = run([job("a", 1), job("b", 1), job("c", 1)], ledger, rules=Rules(max_jobs=2))
    assert started(capped) == ["a", "b"]
    limited = run([job("a", 1)], ledger, [Holder("a", NORMAL)], limit=1)
    assert started(limited) == []


def test_an_urgent_job_takes_back_the_fewest_trial_slots_of_the_lowest_priority() -> None:
    """A low search holds a stage bundle and three slots, a normal one a bundle and a
    slot: the cluster is full. An urgent 2-CPU job takes two of the low search's slots
    on one node."""
    ledger = Ledger(THREE_NODES)
    hold(ledger, "low", ("node-0", 1), slots=["node-0", "node-1", "node-1"])
    hold(ledger, "normal", ("node-2", 1), slots=["node-2"])
    running = [Holder("low", LOW, wanted_slots=3), Holder("normal", NORMAL, wanted_slots=1)]

    decided = run([job("urgent", 2, priority=URGENT)], ledger, running)

    [start] = decided.starts
    assert start.job_id == "urgent"
    assert start.nodes == ("node-1",)
    assert [g.name for g in start.taken] == ["low:slot2", "low:slot1"]
    assert decided.blocked is None


def test_urgent_jobs_in_one_pass_take_back_different_slots() -> None:
    """A low search fills three nodes; two urgent jobs queued together each take two slots
    of their own (both had taken the same two and been booked on one 2-CPU node)."""
    ledger = Ledger(THREE_NODES)
    hold(ledger, "low", ("node-0", 1), slots=["node-0", "node-1", "node-1", "node-2", "node-2"])
    running = [Holder("low", LOW, wanted_slots=5)]
    urgent = [job("u1", 2, priority=URGENT), job("u2", 2, priority=URGENT)]

    decided = run(urgent, ledger, running)

    assert [(s.job_id, s.nodes) for s in decided.starts] == [
        ("u1", ("node-2",)),
        ("u2", ("node-1",)),
    ]
    assert [[g.name for g in s.taken] for s in decided.starts] == [
        ["low:slot4", "low:slot3"],
        ["low:slot2", "low:slot1"],
    ]
    # One more preemption is all the search has left: the second job waits.
    worn = [Holder("low", LOW, wanted_slots=5, preemptions=2)]
    assert [s.job_id for s in run(urgent, ledger, worn).starts] == ["u1"]


def test_preemption_leaves_the_slots_on_nodes_the_job_does_not_use() -> None:
    """The search's newest slots lie on node-1, node-0, node-1: a 2-CPU job fits node-1
    with two of them, and the one on node-0 keeps its trial."""
    ledger = Ledger(ClusterShape.of(2, 2))
    hold(ledger, "low", ("node-0", 1), slots=["node-1", "node-0", "node-1"])
    running = [Holder("low", LOW, wanted_slots=3)]

    [start] = run([job("urgent", 2, priority=URGENT)], ledger, running).starts

    assert start.nodes == ("node-1",)
    assert [g.name for g in start.taken] == ["low:slot2", "low:slot0"]


def test_preemption_takes_nothing_it_cannot_use_and_only_for_urgent_or_high_jobs() -> None:
    ledger = Ledger(THREE_NODES)
    hold(ledger, "low", ("node-0", 2), ("node-1", 2), ("node-2", 1), slots=["node-2"])
    running = [Holder("low", LOW, wanted_slots=1)]

    assert run([job("urgent", 2, priority=URGENT)], ledger, running).starts == []
    one = run([job("high", 1, priority=HIGH)], ledger, running)
    assert [g.name for g in one.starts[0].taken] == ["low:slot0"]
    assert run([job("normal", 1, priority=NORMAL)], ledger, running).starts == []
    assert run([job("low2", 1, priority=LOW)], ledger, running).starts == []
    placing = [Holder("low", LOW, wanted_slots=1, placed=False)]
    assert run([job("urgent", 1, priority=URGENT)], ledger, placing).starts == []
    forecast = Candidate("forecast:f", "", URGENT, Demand((1,)), counted=False)
    assert run([forecast], ledger, running).starts == [], "a batch forecast takes no slot"
    worn = [Holder("low", LOW, wanted_slots=1, preemptions=3)]
    assert run([job("urgent", 1, priority=URGENT)], ledger, worn).starts == []
    never = Rules(max_preemptions=0)
    assert run([job("urgent", 1, priority=URGENT)], ledger, running, never).starts == []


def test_a_search_gets_its_slots_back_where_nothing_waits_for_them() -> None:
    ledger = Ledger(THREE_NODES)
    hold(ledger, "low", ("node-0", 1), slots=["node-0"])
    running = [Holder("low", LOW, wanted_slots=4)]

    assert [node for _, node in run([], ledger, running).regrown] == ["node-1"] * 2 + ["node-2"]
    waiting = run([job("big", 2, 2, 2)], ledger, running)
    assert waiting.regrown == [], "every free CPU is the waiting job's once the search ends"
