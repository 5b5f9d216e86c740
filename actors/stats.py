"""The service's load against its capacity, as ``/stats`` shows it: capacity is CPUs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    active_jobs: int
    queued_jobs: int
    #: CPUs of the cluster's alive nodes: what running jobs may reserve now.
    cluster_cpus: int
    #: CPUs the cluster can grow to.
    max_cpus: int
    #: CPUs the running jobs and batch forecasts hold in their reservations.
    cpus_reserved: int
    #: The operator's cap on jobs running at once, if set.
    max_concurrent_jobs: int | None = None

    @property
    def utilization_percent(self) -> float:
        """Reserved CPUs over the alive nodes' CPUs."""
        if self.cluster_cpus == 0:  # every node with CPUs gone, or not yet up
            return 100.0 if self.cpus_reserved else 0.0
        return round(100 * self.cpus_reserved / self.cluster_cpus, 1)
