"""Why a queued job waits, as ``GET /jobs/{id}`` says it: what the CPUs say of it."""

from __future__ import annotations

from dataclasses import dataclass

from actors.ledger import Ledger
from pipeline.resources import Demand


@dataclass(frozen=True)
class QueueStatus:
    position: int
    waiting_reason: str


def resource_reason(
    job_id: str,
    demand: Demand,
    ledger: Ledger,
    running: int,
    max_jobs: int | None,
    blocked: str | None,
    blocked_is_own: bool = True,
) -> str | None:
    """Why the CPUs keep a queued job waiting (or the operator's cap), or None if they do
    not; ``blocked`` is the job the last dispatch pass found waiting for CPUs, named only
    if it is of the same tenant (``blocked_is_own``): ids do not cross tenants."""
    shape = ledger.shape
    bundles = demand.every_bundle()
    if max_jobs is not None and running >= max_jobs:
        return f"the operator's cap of {max_jobs} running jobs reached"
    if demand.largest > shape.largest_alive:
        return f"waiting for a node with {cpus_text(demand.largest)}"
    if not ledger.fits_empty(bundles, demand.spread):
        return f"waiting for the cluster to grow to {cpus_text(demand.cpus)}"
    if ledger.fit(bundles, demand.spread) is None:
        free = sum(ledger.free().values())
        return f"waiting for {cpus_text(demand.cpus)} ({free} of {shape.cpus} free)"
    if blocked is not None and blocked != job_id:
        other = f"job {blocked}" if blocked_is_own else "another tenant's job"
        return f"its {cpus_text(demand.cpus)} would delay {other}, which waits for more"
    return None


def cpus_text(count: int) -> str:
    return f"{count} CPU{'' if count == 1 else 's'}"
