"""Which queued jobs start now, and what they take: admission by resources.

Pure. One pass over the queue in its order (priority, then tenants in turn), after the batch
forecasts waiting for CPUs (short, and a user waits on them):

- a job starts when its tenant may start another, the operator's cap allows one more,
  and every bundle of its demand fits the CPUs free now;
- the first job that cannot start for want of CPUs is *blocked*; a job behind it starts
  only where that cannot delay it (EASY backfill, without run-time estimates): the
  blocked job must still fit the nodes once every running job has ended except those
  that passed a blocked job, this one included. A job that no alive node can hold waits
  for a node the autoscaler adds for it and blocks nobody;
- a blocked urgent or high job takes back trial slots of lower-priority searches that
  are placed (the lowest priority first; each search at most ``max_preemptions`` times),
  if that is what it takes to fit: only slots on the nodes it is booked on, none another
  start of the pass took; the trials stopped run again later;
- searches short of their trial slots get them back, while no job is blocked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field

from actors.ledger import Group, Ledger, Nodes, best_fit
from domain.jobs import JobPriority
from pipeline.resources import TASK_CPUS, Demand


@dataclass(frozen=True)
class Candidate:
    """A queued job (or a batch forecast waiting for CPUs), as the pass sees it."""

    job_id: str
    tenant_id: str
    priority: int
    demand: Demand
    #: A job: its tenant's limit and the operator's cap count it.
    counted: bool = True


@dataclass(frozen=True)
class Holder:
    """A running job, as the pass sees it."""

    job_id: str
    priority: int
    #: The trial slots its demand asks for, and how often slots were taken from it.
    wanted_slots: int = 0
    preemptions: int = 0
    #: Whether it started ahead of a blocked job.
    passed: bool = False
    #: Whether Ray has placed its reservation (a job still being placed is no victim).
    placed: bool = True


@dataclass(frozen=True)
class Start:
    job_id: str
    tenant_id: str
    #: Where its bundles are booked (``Demand.every_bundle`` order).
    nodes: Nodes
    passed: bool = False
    #: Trial slots of other jobs removed to make room for it.
    taken: tuple[Group, ...] = ()


@dataclass
class Plan:
    starts: list[Start] = field(default_factory=list)
    #: The first job that could not start for want of CPUs.
    blocked: Candidate | None = None
    #: Trial slots to give back: (job id, node).
    regrown: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Rules:
    #: The operator's cap on jobs running at once (None: no cap).
    max_jobs: int | None = None
    #: How often one search's trial slots may be taken back (0: never).
    max_preemptions: int = 3


def plan(
    queue: Sequence[Candidate],
    running: Sequence[Holder],
    ledger: Ledger,
    may_start: Callable[[str, int], bool],
    running_of: Mapping[str, int],
    rules: Rules,
) -> Plan:
    """Decide one pass; ``may_start(tenant, running)`` is the tenants' limit."""
    result = Plan()
    free = ledger.free()
    passers = {h.job_id for h in running if h.passed}
    # What would be free with every job gone but the ones that passed a blocked job.
    if_ended = ledger.free(counting=lambda g: g.holder in passers)
    tenants = dict(running_of)
    jobs = len(running)
    # Trial slots taken back in this pass, and how often each search was.
    gone: set[str] = set()
    preempted: Counter[str] = Counter()
    for job in queue:
        if job.counted and rules.max_jobs is not None and jobs >= rules.max_jobs:
            continue
        if job.counted and not may_start(job.tenant_id, tenants.get(job.tenant_id, 0)):
            continue
        bundles = job.demand.every_bundle()
        nodes = best_fit(bundles, free, job.demand.spread)
        start = None
        if nodes is not None and _may_pass(result.blocked, bundles, nodes, if_ended):
            start = Start(job.job_id, job.tenant_id, nodes, passed=result.blocked is not None)
        elif result.blocked is None and ledger.fits_empty(bundles, job.demand.spread):
            result.blocked = job
            start = _preempting(job, running, free, ledger, rules, gone, preempted)
        if start is None:
            continue
        result.starts.append(start)
        if start.taken:
            result.blocked = None
            _add(free, start.taken)
            gone.update(group.name for group in start.taken)
            preempted.update({group.holder for group in start.taken})
        _take(free, bundles, start.nodes)
        if start.passed:
            _take(if_ended, bundles, start.nodes)
        if job.counted:
            tenants[job.tenant_id] = tenants.get(job.tenant_id, 0) + 1
            jobs += 1
    if result.blocked is None:
        result.regrown = _regrown(running, ledger, free)
    return result


def _may_pass(
    blocked: Candidate | None,
    bundles: Sequence[int],
    nodes: Nodes,
    if_ended: Mapping[str, int],
) -> bool:
    """Whether a job booked on ``nodes`` leaves room for ``blocked`` once the jobs that
    did not pass it end (always, with nothing blocked)."""
    if blocked is None:
        return True
    wanted = blocked.demand.every_bundle()
    room = dict(if_ended)
    _take(room, bundles, nodes)
    return best_fit(wanted, room, blocked.demand.spread) is not None


def _preempting(
    job: Candidate,
    running: Sequence[Holder],
    free: dict[str, int],
    ledger: Ledger,
    rules: Rules,
    gone: Set[str] = frozenset(),
    preempted: Mapping[str, int] | None = None,
) -> Start | None:
    """A start for an urgent or high ``job`` on trial slots taken back from placed,
    lower-priority searches, if that makes it fit (a batch forecast takes none): the
    fewest, the lowest priority's first, none in ``gone`` (taken by a start of this pass;
    ``preempted``: how often each search was in it)."""
    if not job.counted or job.priority < JobPriority.HIGH or rules.max_preemptions == 0:
        return None
    preempted = preempted or {}

    def slots(holder: Holder) -> list[Group]:
        return [g for g in ledger.slots_of(holder.job_id) if g.name not in gone]

    victims = sorted(
        (
            h
            for h in running
            if h.priority < job.priority
            and h.placed
            and h.preemptions + preempted.get(h.job_id, 0) < rules.max_preemptions
            and slots(h)
        ),
        key=lambda h: (h.priority, -len(slots(h))),
    )
    bundles = job.demand.every_bundle()
    room = dict(free)
    taken: list[Group] = []
    for victim in victims:
        for group in reversed(slots(victim)):
            if best_fit(bundles, room, job.demand.spread) is not None:
                break
            _add(room, [group])
            taken.append(group)
    nodes = best_fit(bundles, room, job.demand.spread)
    if not taken or nodes is None:
        return None
    for group in reversed(list(taken)):  # slots on nodes the fit did not need stay
        without = dict(room)
        _take(without, group.bundles, group.nodes)
        if (fit := best_fit(bundles, without, job.demand.spread)) is not None:
            room, nodes = without, fit
            taken.remove(group)
    return Start(job.job_id, job.tenant_id, nodes, taken=tuple(taken))


def _regrown(
    running: Sequence[Holder], ledger: Ledger, free: dict[str, int]
) -> list[tuple[str, str]]:
    """Trial slots given back to searches short of them, the highest priority first, on
    CPUs that nothing waits for."""
    regrown: list[tuple[str, str]] = []
    for holder in sorted(running, key=lambda h: -h.priority):
        missing = holder.wanted_slots - len(ledger.slots_of(holder.job_id))
        for _ in range(max(0, missing)):
            node = best_fit([TASK_CPUS], free)
            if node is None:
                return regrown
            _take(free, [TASK_CPUS], node)
            regrown.append((holder.job_id, node[0]))
    return regrown


def _take(free: dict[str, int], bundles: Sequence[int], nodes: Nodes) -> None:
    for cpus, node in zip(bundles, nodes, strict=True):
        if node in free:
            free[node] = max(0, free[node] - cpus)


def _add(free: dict[str, int], groups: Sequence[Group]) -> None:
    for group in groups:
        for cpus, node in zip(group.bundles, group.nodes, strict=True):
            if node in free:
                free[node] += cpus
