"""A pure queue of job ids: higher priority first; within a priority, tenants take turns.

Each tenant's jobs keep their order of creation (FIFO, also for a job re-queued after an
interruption). Among jobs of equal priority the tenants are served in turn (the least
recently served first), so one tenant's hundred jobs cannot starve another's one.
``ordered`` gives that order; the orchestrator ``take``s from it the jobs that may start
(their tenants' limits and the free CPUs decide), and each job keeps the ``Demand`` it
will hold once it runs.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.resources import Demand

#: What a job holds unless the queue is told otherwise: one CPU.
ONE_CPU = Demand((1,))
#: (created_at, arrival number, job id): a tenant's line is kept sorted by it.
_Place = tuple[datetime, int, str]


@dataclass
class _Level:
    """One priority: per-tenant lines, and when each tenant was last served."""

    lines: dict[str, list[_Place]] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    clock: int = 0

    def push(self, tenant_id: str, place: _Place) -> None:
        bisect.insort(self.lines.setdefault(tenant_id, []), place)

    def ordered(self) -> list[str]:
        """Its job ids in turn: the least recently served tenant's head first (a tenant
        never served goes first; ties go to the older job), that tenant then last."""
        heads = [(self.served.get(t, -1), line[0], t, 0) for t, line in self.lines.items()]
        heapq.heapify(heads)
        order, clock = [], self.clock
        while heads:
            _, place, tenant_id, index = heapq.heappop(heads)
            order.append(place[2])
            line = self.lines[tenant_id]
            if index + 1 < len(line):
                heapq.heappush(heads, (clock, line[index + 1], tenant_id, index + 1))
            clock += 1
        return order

    def take(self, tenant_id: str, job_id: str) -> None:
        """Remove a job that starts: its tenant was served now."""
        self.remove(tenant_id, job_id)
        self.served[tenant_id] = self.clock
        self.clock += 1

    def remove(self, tenant_id: str, job_id: str) -> None:
        line = [place for place in self.lines[tenant_id] if place[2] != job_id]
        if line:
            self.lines[tenant_id] = line
        else:
            del self.lines[tenant_id]


class JobQueue:
    def __init__(self) -> None:
        #: Per priority; a level that empties is kept, with whose turn it is.
        self._levels: dict[int, _Level] = {}
        self._where: dict[str, tuple[str, int]] = {}
        #: What each queued job will hold once it runs.
        self._demands: dict[str, Demand] = {}
        self._arrivals = itertools.count()

    def push(
        self,
        job_id: str,
        tenant_id: str,
        priority: int,
        created_at: datetime,
        demand: Demand = ONE_CPU,
    ) -> None:
        """Add a job (that will hold ``demand``) among its tenant's jobs of that priority,
        by creation time; pushing a queued job again does nothing."""
        if job_id in self._where:
            return
        self._demands[job_id] = demand
        place = (created_at, next(self._arrivals), job_id)
        self._levels.setdefault(priority, _Level()).push(tenant_id, place)
        self._where[job_id] = (tenant_id, priority)

    def take(self, job_id: str) -> None:
        """Remove a queued job that starts now, out of turn if need be (a larger job ahead
        of it waits for CPUs); its tenant counts as served."""
        tenant_id, priority = self._where[job_id]
        self._levels[priority].take(tenant_id, job_id)
        self._forget(job_id)

    def remove(self, job_id: str) -> bool:
        """Forget a job; returns whether it was queued."""
        if job_id not in self._where:
            return False
        tenant_id, priority = self._where[job_id]
        self._levels[priority].remove(tenant_id, job_id)
        self._forget(job_id)
        return True

    def _forget(self, job_id: str) -> None:
        """Drop a job's bookkeeping; its level stays, empty or not, to keep the turns."""
        self._where.pop(job_id)
        del self._demands[job_id]

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def entries(self) -> list[tuple[int, str]]:
        """(priority, tenant) of every queued job."""
        return [(priority, tenant) for tenant, priority in self._where.values()]

    def tenant_of(self, job_id: str) -> str:
        return self._where[job_id][0]

    def priority_of(self, job_id: str) -> int:
        return self._where[job_id][1]

    def demand_of(self, job_id: str) -> Demand:
        return self._demands[job_id]

    def queued_of(self, tenant_id: str) -> int:
        return sum(1 for tenant, _ in self._where.values() if tenant == tenant_id)

    def ahead_of(self, job_id: str, tenant_only: bool = False) -> tuple[int, int, bool]:
        """(jobs that would start before this one, how many of them have higher priority,
        whether other tenants' jobs are ahead too); with ``tenant_only`` the counts are of
        its own tenant's jobs: how many jobs others have queued is theirs to know."""
        return self.places([job_id], tenant_only)[job_id]

    def places(
        self, job_ids: Iterable[str], tenant_only: bool = False
    ) -> dict[str, tuple[int, int, bool]]:
        """``ahead_of`` of each queued one of ``job_ids``, in one pass over the order (a
        page of jobs asks at once)."""
        wanted = {job_id for job_id in job_ids if job_id in self._where}
        found: dict[str, tuple[int, int, bool]] = {}
        seen: Counter[int] = Counter()  # by priority
        own_seen: Counter[tuple[str, int]] = Counter()  # by tenant and priority
        for index, job_id in enumerate(self.ordered() if wanted else ()):
            tenant_id, priority = self._where[job_id]
            if job_id in wanted:
                own = sum(n for (t, _), n in own_seen.items() if t == tenant_id)
                if tenant_only:
                    mine = own_seen.items()
                    above = sum(n for (t, p), n in mine if t == tenant_id and p > priority)
                else:
                    above = sum(n for p, n in seen.items() if p > priority)
                found[job_id] = (own if tenant_only else index, above, own < index)
                if len(found) == len(wanted):
                    break
            seen[priority] += 1
            own_seen[tenant_id, priority] += 1
        return found

    def demands(self) -> list[Demand]:
        """What each queued job will hold, in the order they would be popped."""
        return [self._demands[job_id] for job_id in self.ordered()]

    def ordered(self) -> list[str]:
        """The queued job ids in the order they would be popped with nothing blocked."""
        return [
            job_id
            for priority in sorted(self._levels, reverse=True)
            for job_id in self._levels[priority].ordered()
        ]
