"""What to ask the cluster's autoscaler for while work waits: exactly the bundles of what
runs and of what is queued, in queue order, within the cluster's most CPUs.

``requested_bundles`` is pure; ``AutoscalerRequests`` sends a request through Ray's
``request_resources`` only when it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: A request to the autoscaler (``request_resources(bundles=...)``).
Bundles = list[dict[str, float]]


def requested_bundles(
    running: Sequence[Sequence[int]],
    queued: Sequence[Sequence[int]],
    max_cpus: int,
    max_jobs: int | None,
) -> Bundles:
    """What the cluster should fit while jobs wait: the bundles of each running job and
    of each queued job (in queue order) while their CPUs stay within ``max_cpus`` and the
    jobs within ``max_jobs`` (the operator's cap); nothing once no job waits. The
    autoscaler sizes the cluster to fit the whole request at once (``request_resources``
    counts the CPUs in use), hence the running jobs in it."""
    if not queued:
        return []
    bundles: Bundles = []
    total = jobs = 0
    for demand in [*running, *queued]:
        if max_jobs is not None and jobs == max_jobs:
            break
        if total + sum(demand) > max_cpus:
            continue  # a smaller job further back may still fit
        bundles.extend({"CPU": float(cpus)} for cpus in demand)
        total += sum(demand)
        jobs += 1
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
        running: Sequence[Sequence[int]],
        queued: Sequence[Sequence[int]],
        max_cpus: int,
        max_jobs: int | None,
    ) -> bool:
        """Send the request if it changed; returns whether it was sent."""
        bundles = requested_bundles(running, queued, max_cpus, max_jobs)
        if bundles == self._last:
            return False
        self._send(bundles)
        self._last = bundles
        return True


def send_to_autoscaler(bundles: Bundles) -> None:
    """``request_resources`` with ``bundles``; an empty list clears the request."""
    from ray.autoscaler.sdk import request_resources

    request_resources(bundles=bundles)
