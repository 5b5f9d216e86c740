"""The queue's end: which work leaves the queue, and the reservation it leaves with.

``Admitter`` runs ``actors.dispatch`` over the queue (and over the batch forecasts that
wait for CPUs, which go first), books each start's placement groups (``Reservations``),
takes trial slots back for urgent jobs and gives them back, and says why a queued job
waits. ``Lifecycle`` turns what it admits into running jobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from actors.admission import Admission
from actors.autoscaler import Wanted
from actors.dispatch import Candidate, Holder, Rules, Start, plan
from actors.ledger import Group
from actors.queue import JobQueue
from actors.recorder import service_log
from actors.reservations import Reservations
from actors.running import RunningJob
from actors.waiting import QueueStatus, cpus_text, resource_reason
from db.records import NewLog
from domain.jobs import JobPriority
from pipeline.placement import Bundle, Placement
from pipeline.resources import Demand

logger = logging.getLogger(__name__)

#: Times Ray may fail to place a reservation that is not a queued job (a batch forecast's)
#: in time before it is given up for good; each time it waits for CPUs again.
PLACEMENTS = 3


@dataclass(frozen=True)
class Admitted:
    """A job that left the queue: its reservation is booked, Ray places it next."""

    job_id: str
    tenant_id: str
    priority: int
    demand: Demand
    passed: bool


class Admitter:
    def __init__(
        self,
        queue: JobQueue,
        admission: Admission,
        reservations: Reservations,
        rules: Rules,
        *,
        placement_timeout: float,
        wake: Callable[[], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._queue = queue
        self._admission = admission
        self._reservations = reservations
        self._ledger = reservations.ledger
        self._rules = rules
        self._placement_timeout = placement_timeout
        self._wake = wake
        self._clock = clock
        #: Work that is not a queued job, waiting for CPUs: its demand and its placement.
        self._waiting: dict[str, tuple[Demand, asyncio.Future[Placement]]] = {}
        #: How often Ray did not place each reservation in ``_waiting`` in time.
        self._placements: dict[str, int] = {}
        #: The first queued job the last pass found waiting for CPUs.
        self._blocked: str | None = None
        #: Tasks nobody awaits (the loop keeps only weak references).
        self._background: set[asyncio.Task[None]] = set()

    def admit(self, running: Mapping[str, RunningJob]) -> tuple[list[Admitted], list[NewLog]]:
        """One dispatch pass: the jobs that leave the queue, and the log lines that say
        whose trial slots they took."""
        queue = self._queue
        tenants: dict[str, int] = {}
        for job in running.values():
            tenants[job.tenant_id] = tenants.get(job.tenant_id, 0) + 1
        decided = plan(
            [
                *(
                    Candidate(holder, "", JobPriority.URGENT, demand, counted=False)
                    for holder, (demand, _) in self._waiting.items()
                ),
                *(
                    Candidate(j, queue.tenant_of(j), queue.priority_of(j), queue.demand_of(j))
                    for j in queue.ordered()
                ),
            ],
            [
                Holder(
                    job_id, job.priority, job.demand.slots, job.preemptions, job.passed, job.placed
                )
                for job_id, job in running.items()
            ],
            self._ledger,
            self._admission.may_start,
            tenants,
            self._rules,
        )
        self._blocked = decided.blocked.job_id if decided.blocked is not None else None
        admitted: list[Admitted] = []
        logs: list[NewLog] = []
        for start in decided.starts:
            if start.job_id in self._waiting:
                self._book_waiting(start)
                continue
            demand = queue.demand_of(start.job_id)
            if not self._book(start.job_id, demand, start):
                continue
            priority = queue.priority_of(start.job_id)
            queue.take(start.job_id)
            if start.taken:
                logs += self._take_back(start, JobPriority(priority).label, running)
            for slot in self._reservations.slots_to_place(start.job_id):
                self._in_background(self._place_slot(slot))
            admitted.append(Admitted(start.job_id, start.tenant_id, priority, demand, start.passed))
        for job_id, node in decided.regrown:
            try:
                slot = self._reservations.add_slot(job_id, node)
            except Exception:  # e.g. the GCS unreachable: the search goes on without it
                logger.exception("could not ask Ray for a trial slot of %s", job_id)
                continue
            self._in_background(self._place_slot(slot))
        return admitted, logs

    def _book(self, holder: str, demand: Demand, start: Start) -> bool:
        """Ask Ray for ``holder``'s placement groups; False (nothing booked) if it refused."""
        try:
            self._reservations.book(holder, demand, start.nodes)
        except Exception:  # e.g. the GCS unreachable: the work stays where it was
            logger.exception("could not ask Ray for the placement groups of %s", holder)
            self._reservations.release(holder)
            return False
        return True

    async def _place_slot(self, slot: Group) -> None:
        """Book where Ray put a trial slot; one not placed in time is given up."""
        try:
            await asyncio.wait_for(self._reservations.place(slot), self._placement_timeout)
        except Exception:
            logger.warning("trial slot %s was not placed; giving it up", slot.name, exc_info=True)
            self._reservations.take_back([slot])
            self._wake()

    async def placed(self, job_id: str, stopping: asyncio.Event) -> bool:
        """Wait until Ray has placed the job's reservation; False if ``stopping`` was set
        meanwhile (a cancel), the placement timeout passed or Ray failed to place it."""
        placing = asyncio.ensure_future(self._reservations.placed(job_id))
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {placing, stopped},
                timeout=self._placement_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopped.cancel()
        if placing not in done:
            placing.cancel()
            return False
        try:
            placing.result()
        except Exception:  # Ray refused or lost it: the job goes back to the queue
            logger.exception("placing job %s failed", job_id)
            return False
        return True

    # ------------------------------------------------------------------ other holders

    async def reserve(self, holder: str, demand: Demand) -> Placement:
        """Reserve ``demand`` for work that is not a queued job (a batch forecast, named
        ``holder``, of one-CPU bundles): it goes ahead of the queued jobs as soon as it
        fits, with no more bundles than the cluster can ever hold CPUs. Returns once Ray
        has placed it; ``release`` frees it. A reservation Ray does not place in time is
        given up and waits again, ``PLACEMENTS`` times at most.

        Raises:
            TimeoutError: Ray did not place it in time, ``PLACEMENTS`` times.
        """
        most = max(1, self._ledger.shape.max_cpus)
        if len(demand.bundles) > most:
            demand = replace(demand, bundles=demand.bundles[:most])
        placed: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
        self._waiting[holder] = (demand, placed)
        self._wake()
        try:
            return await placed
        except BaseException:
            self.release(holder)
            raise
        finally:
            self._waiting.pop(holder, None)
            self._placements.pop(holder, None)

    def release(self, holder: str) -> None:
        """Free every placement group of ``holder`` (a job's, or what ``reserve`` got)."""
        self._reservations.release(holder)
        self._wake()

    def _book_waiting(self, start: Start) -> None:
        """Book what a ``reserve`` waits for and hand it its placement once Ray placed it
        (or the error: it then releases what was booked)."""
        demand, placed = self._waiting.pop(start.job_id)
        if not self._book(start.job_id, demand, start):
            placed.set_exception(RuntimeError("Ray refused the placement groups"))
            return

        async def place() -> None:
            try:
                await asyncio.wait_for(
                    self._reservations.placed(start.job_id), self._placement_timeout
                )
            except Exception as exc:
                if placed.done():
                    return
                tries = self._placements[start.job_id] = self._placements.get(start.job_id, 0) + 1
                if tries >= PLACEMENTS:
                    placed.set_exception(
                        TimeoutError(
                            f"Ray did not place its {len(demand.bundles)} CPU(s) within "
                            f"{self._placement_timeout:g} s, {tries} times ({exc!r})"
                        )
                    )
                    return
                logger.warning("%s was not placed (%r); it waits for CPUs again", start.job_id, exc)
                self._reservations.release(start.job_id)
                self._waiting[start.job_id] = (demand, placed)
                self._wake()
                return
            if not placed.done():
                placed.set_result(self._reservations.placement(start.job_id))

        self._in_background(place())

    # ------------------------------------------------------------------ preemption

    def _take_back(
        self, start: Start, label: str, running: Mapping[str, RunningJob]
    ) -> list[NewLog]:
        """Remove the trial slots ``start`` takes; the log lines that say so on both sides."""
        self._reservations.take_back(start.taken)
        now, logs = self._clock(), []
        for victim in sorted({group.holder for group in start.taken}):
            count = sum(1 for group in start.taken if group.holder == victim)
            held = running.get(victim)
            if held is not None:
                held.preemptions += 1
            logger.info("took %d trial slot(s) of job %s back for %s", count, victim, start.job_id)
            own = held is not None and held.tenant_id == start.tenant_id  # ids stay in-tenant
            taker = f"{label} job {start.job_id}" if own else f"another tenant's {label} job"
            taken_from = f"job {victim}" if own else "another tenant's job"
            logs += [
                service_log(
                    victim,
                    f"{count} trial slot(s) taken back for {taker}; their trials run again later",
                    now,
                ),
                service_log(
                    start.job_id, f"starting on {count} CPU(s) taken back from {taken_from}", now
                ),
            ]
        return logs

    def _tenant_of(self, job_id: str, running: Mapping[str, RunningJob]) -> str | None:
        """The tenant of a queued or running job (None: neither, any more)."""
        if job_id in self._queue:
            return self._queue.tenant_of(job_id)
        held = running.get(job_id)
        return held.tenant_id if held is not None else None

    # ------------------------------------------------------------------ queries

    def queue_statuses(
        self, job_ids: Sequence[str], running: Mapping[str, RunningJob], tenant_only: bool = False
    ) -> dict[str, QueueStatus]:
        """Where each queued (or starting) one of the jobs stands and why it waits. With
        ``tenant_only`` (a tenant's own key asks) places count its tenant's jobs only."""
        places = self._queue.places(job_ids, tenant_only)
        found = {}
        for job_id in job_ids:
            job = running.get(job_id)
            if job is not None and not job.placed:
                cpus = cpus_text(job.demand.cpus)
                found[job_id] = QueueStatus(0, f"starting: Ray is placing its {cpus}")
            elif job_id in places:
                found[job_id] = self._queue_status(job_id, running, tenant_only, places[job_id])
        return found

    def _queue_status(
        self,
        job_id: str,
        running: Mapping[str, RunningJob],
        tenant_only: bool,
        place: tuple[int, int, bool],
    ) -> QueueStatus:
        tenant_id = self._queue.tenant_of(job_id)
        ahead, higher, others_ahead = place
        blocked = self._blocked
        resources = resource_reason(
            job_id,
            self._queue.demand_of(job_id),
            self._ledger,
            len(running),
            self._rules.max_jobs,
            blocked,
            blocked is None or self._tenant_of(blocked, running) == tenant_id,
        )
        of_tenant = sum(1 for job in running.values() if job.tenant_id == tenant_id)
        reason = self._admission.waiting_reason(
            tenant_id, of_tenant, ahead, higher, resources, others_ahead and tenant_only
        )
        return QueueStatus(position=ahead + 1, waiting_reason=reason)

    def demand(self, running: Mapping[str, RunningJob]) -> tuple[list[Wanted], list[Wanted]]:
        """The bundles of what holds CPUs (running jobs, their trial slots now included,
        and batch forecasts), and of what may start once it has them: the batch
        forecasts waiting for CPUs, then the queued jobs in the order they start whose
        tenants may start them (a paused tenant's jobs would only keep nodes idle)."""
        held = [
            Wanted(tuple(cpus for group in groups for cpus in group.bundles), holder in running)
            for holder, groups in self._ledger.holders().items()
        ]
        waiting = [
            Wanted(tuple(demand.every_bundle()), False) for demand, _ in self._waiting.values()
        ]
        tenants = Counter(job.tenant_id for job in running.values())
        for job_id in self._queue.ordered():
            tenant_id = self._queue.tenant_of(job_id)
            if self._admission.may_start(tenant_id, tenants[tenant_id]):
                tenants[tenant_id] += 1
                waiting.append(Wanted(tuple(self._queue.demand_of(job_id).every_bundle())))
        return held, waiting

    def placement(self, job_id: str) -> Placement:
        """A placed job's reservation as its tasks see it."""
        return self._reservations.placement(job_id)

    def held_cpus(self, job_id: str) -> int:
        return self._ledger.held(job_id)

    def trial_slots(self, job_id: str) -> list[Bundle]:
        return self._reservations.trial_slots(job_id)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
