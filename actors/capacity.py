"""Capacity follows the cluster: the CPUs of its alive nodes now, and the most it can
grow to; and what to ask its autoscaler for while jobs wait.

The orchestrator reads the cluster (``ray_cluster_size``) every few seconds and hands the
size to ``Capacity``; admission, the lifecycle and the validator read it there.
``AutoscalerRequests`` decides what to ask the autoscaler for and sends only changes;
``Stats`` is the service's load against its capacity.
Only ``ray_cluster_size`` and ``send_to_autoscaler`` talk to Ray; the rest is pure.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import TrainingConfig

logger = logging.getLogger(__name__)

#: A request to the autoscaler: one CPU bundle per job (``request_resources(bundles=...)``).
Bundles = list[dict[str, float]]


@dataclass(frozen=True)
class ClusterSize:
    """CPUs of the alive nodes, and the most the cluster is configured to have."""

    cpus: int
    max_cpus: int


def job_cpus(config: TrainingConfig) -> int:
    """The CPUs one job's training holds at once (each data-parallel worker its own)."""
    workers = config.distributed.workers if config.distributed is not None else 1
    return config.train_cpus * workers


class Capacity:
    """How many jobs may run now, and the cluster size a job is checked against.

    ``max_concurrent_jobs`` (the operator's setting), when given, caps the jobs running at
    once; otherwise there is one slot per CPU of the alive nodes."""

    def __init__(self, size: ClusterSize, max_concurrent_jobs: int | None = None) -> None:
        self._size = size
        self._max_jobs = max_concurrent_jobs

    @property
    def size(self) -> ClusterSize:
        return self._size

    def update(self, size: ClusterSize) -> bool:
        """Take the cluster's new size; returns whether the number of slots changed."""
        before = self.slots
        if size != self._size:
            logger.info("cluster now %s CPUs (at most %s)", size.cpus, size.max_cpus)
        self._size = size
        return self.slots != before

    @property
    def slots(self) -> int:
        """Jobs that may run at once now."""
        if self._max_jobs is None:
            return self._size.cpus
        return min(self._max_jobs, self._size.cpus)

    @property
    def max_slots(self) -> int:
        """Jobs that may run at once once the cluster has grown to its maximum."""
        if self._max_jobs is None:
            return self._size.max_cpus
        return min(self._max_jobs, self._size.max_cpus)


def requested_bundles(
    running: Sequence[int], queued: Sequence[int], max_cpus: int, max_jobs: int
) -> Bundles:
    """What the cluster should fit while jobs wait: a bundle per running job and per
    queued job (in queue order) while their sum stays within ``max_cpus`` and their count
    within ``max_jobs`` (the jobs that may ever run at once); nothing once no job waits.
    The autoscaler sizes the cluster to fit the whole request at once
    (``request_resources`` counts the CPUs in use), hence the running jobs in it."""
    if not queued:
        return []
    bundles: Bundles = []
    total = 0
    for cpus in [*running, *queued]:
        if len(bundles) == max_jobs:
            break
        if total + cpus > max_cpus:
            continue  # a smaller job further back may still fit
        bundles.append({"CPU": float(cpus)})
        total += cpus
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
        self, running: Sequence[int], queued: Sequence[int], max_cpus: int, max_jobs: int
    ) -> bool:
        """Send the request if it changed; returns whether it was sent."""
        bundles = requested_bundles(running, queued, max_cpus, max_jobs)
        if bundles == self._last:
            return False
        self._send(bundles)
        self._last = bundles
        return True


def ray_cluster_size(max_cluster_cpus: int | None) -> ClusterSize:
    """The connected Ray cluster's CPUs now, and its most: the autoscaler's configured
    maximum when it can be read (``autoscaler_max_cpus``), else ``max_cluster_cpus``, and
    never less than what is there now."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 0))  # type: ignore[no-untyped-call]
    configured = autoscaler_max_cpus(ray.get_runtime_context().gcs_address)
    most = configured if configured is not None else max_cluster_cpus
    return ClusterSize(cpus, max(cpus, most or 0))


def autoscaler_max_cpus(gcs_address: str) -> int | None:
    """The most CPUs the cluster's autoscaler may bring up; None if there is none to ask.

    Ray's GCS keeps the autoscaler's cluster config once an autoscaler reports it
    (``ray._private.state``); Ray 2.60's autoscalers do not, so the config file the
    cluster's autoscaler was started with is read instead: the autoscaler runs on the
    head node, as the orchestrator does. An autoscaler elsewhere (KubeRay's sidecar) is
    not found: set ``TRAINING_MAX_CLUSTER_CPUS`` there."""
    import ray._private.state

    try:
        reported = ray._private.state.state.get_max_resources_from_cluster_config()
    except Exception:  # a private API: any failure means "not reported"
        logger.debug("no cluster config in the GCS", exc_info=True)
        reported = None
    if reported and 0 < reported.get("CPU", 0) < sys.maxsize:
        return int(reported["CPU"])
    path = autoscaler_config_path(gcs_address)
    if path is None:
        return None
    try:
        config = yaml.safe_load(path.read_text())  # YAML, or the JSON of a test cluster
    except (OSError, yaml.YAMLError):
        logger.warning("cannot read the autoscaler's config %s", path, exc_info=True)
        return None
    return config_max_cpus(config)


def autoscaler_config_path(gcs_address: str, proc: Path = Path("/proc")) -> Path | None:
    """The ``--autoscaling-config`` of this node's autoscaler for the cluster at
    ``gcs_address`` (read from its command line), or None."""
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process has gone
            continue
        if not any(a.endswith("monitor.py") and "autoscaler" in a for a in args):
            continue
        if f"--gcs-address={gcs_address}" not in args:
            continue
        for arg in args:
            if arg.startswith("--autoscaling-config="):
                return Path(arg.partition("=")[2]).expanduser()
    return None


def config_max_cpus(config: Mapping[str, Any]) -> int | None:
    """A cluster-launcher config's most CPUs: the head's and its worker types' CPUs times
    their ``max_workers``, the biggest first, within the config's ``max_workers``; None
    if the node types do not say their CPUs."""
    types: Mapping[str, Mapping[str, Any]] = config.get("available_node_types") or {}
    head = types.get(config.get("head_node_type", ""), {})
    head_cpus = int(head.get("resources", {}).get("CPU", 0))
    workers = sorted(
        (
            (int(spec.get("resources", {}).get("CPU", 0)), int(spec.get("max_workers", 0)))
            for name, spec in types.items()
            if name != config.get("head_node_type")
        ),
        reverse=True,
    )
    room = int(config.get("max_workers", sum(count for _, count in workers)))
    total = head_cpus
    for cpus, count in workers:
        taken = min(count, room)
        total += cpus * taken
        room -= taken
    return total or None


def send_to_autoscaler(bundles: Bundles) -> None:
    """``request_resources`` with ``bundles``; an empty list clears the request."""
    from ray.autoscaler.sdk import request_resources

    request_resources(bundles=bundles)


@dataclass(frozen=True)
class Stats:
    active_jobs: int
    queued_jobs: int
    #: Jobs that may run at once now (it follows the cluster's alive nodes).
    total_capacity: int
    #: Jobs that may run at once once the cluster has grown to its maximum.
    max_capacity: int
    #: CPUs of the cluster's alive nodes.
    cluster_cpus: int

    @property
    def utilization_percent(self) -> float:
        if self.total_capacity == 0:  # every node with CPUs gone, or not yet up
            return 100.0 if self.active_jobs else 0.0
        return round(100 * self.active_jobs / self.total_capacity, 1)
