"""What to ask the cluster's autoscaler for while work waits: exactly the bundles of what
holds CPUs and of what may start once it has them (batch forecasts waiting for CPUs,
then queued jobs in queue order, none of a tenant at its limit), within the cluster's
most CPUs.

``requested_bundles`` is pure; ``AutoscalerRequests`` sends a request through Ray's
``request_resources`` only when it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: A request to the autoscaler (``request_resources(bundles=...)``).
Bundles = list[dict[str, float]]


@dataclass(frozen=True)
class Wanted:
    """Bundles the cluster should fit: a job's (the operator's cap counts it) or a batch
    forecast's (it does not)."""

    bundles: tuple[int, ...]
    counted: bool = True


def requested_bundles(
    held: Sequence[Wanted], waiting: Sequence[Wanted], max_cpus: int, max_jobs: int | None
) -> Bundles:
    """What the cluster should fit while work waits: the bundles of what holds CPUs now
    and of what waits for them (in the order it starts) while their CPUs stay within
    ``max_cpus`` and the jobs within ``max_jobs`` (the operator's cap, which batch
    forecasts are not held to); nothing once nothing waits. The autoscaler sizes the
    cluster to fit the whole request at once (``request_resources`` counts the CPUs in
    use), hence what holds CPUs in it."""
    if not waiting:
        return []
    bundles: Bundles = []
    total = jobs = 0
    for wanted in [*held, *waiting]:
        if wanted.counted and max_jobs is not None and jobs == max_jobs:
            continue
        if total + sum(wanted.bundles) > max_cpus:
            continue  # a smaller one further back may still fit
        bundles.extend({"CPU": float(cpus)} for cpus in wanted.bundles)
        total += sum(wanted.bundles)
        jobs += wanted.counted
    return bundles


class AutoscalerRequests:
    """Asks the autoscaler for ``requested_bundles`` through ``send`` (Ray's
    ``request_resources``), only when the request changes: each call replaces the last.
    The first is always sent: a request outlives the orchestrator that made it."""

    def __init__(self, send: Callable[[Bundles], None]) -> None:
        self._send = send
        self._last: Bundles | None = None

    @property
    def last(self) -> Bundles | None:
        """The request sent last; None before the first."""
        return None if self._last is None else list(self._last)

    def update(
        self,
        held: Sequence[Wanted],
        waiting: Sequence[Wanted],
        max_cpus: int,
        max_jobs: int | None,
    ) -> bool:
        """Send the request if it changed; returns whether it was sent."""
        bundles = requested_bundles(held, waiting, max_cpus, max_jobs)
        if bundles == self._last:
            return False
        self._send(bundles)
        self._last = bundles
        return True


def send_to_autoscaler(bundles: Bundles) -> None:
    """``request_resources`` with ``bundles``; an empty list clears the request."""
    from ray.autoscaler.sdk import request_resources

    request_resources(bundles=bundles)
