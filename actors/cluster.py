"""The cluster as admission sees it: the CPUs of each alive node, the largest node it
has or can get, and the most CPUs it can grow to.

The orchestrator reads it (``read_cluster``) every few seconds. Nodes without CPUs (a
head started with ``--num-cpus=0``, which keeps tasks off it) are left out: no bundle
can go there. Only ``read_cluster`` and ``autoscaler_config`` talk to Ray.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterShape:
    """The CPUs of each alive node with CPUs, by node id; the most CPUs one node has or
    the autoscaler can bring up (``largest_node``), and the most the whole cluster can
    grow to (``max_cpus``)."""

    nodes: Mapping[str, int] = field(default_factory=dict)
    largest_node: int = 0
    max_cpus: int = 0

    def __post_init__(self) -> None:
        alive = max(self.nodes.values(), default=0)
        object.__setattr__(self, "largest_node", max(self.largest_node, alive))
        object.__setattr__(self, "max_cpus", max(self.max_cpus, self.cpus))

    @classmethod
    def of(cls, *node_cpus: int, largest_node: int = 0, max_cpus: int = 0) -> ClusterShape:
        """A shape of nodes ``node-0``, ``node-1``, ... (tests, benchmarks)."""
        nodes = {f"node-{n}": cpus for n, cpus in enumerate(node_cpus)}
        return cls(nodes, largest_node, max_cpus)

    @property
    def cpus(self) -> int:
        """The CPUs of the alive nodes."""
        return sum(self.nodes.values())

    @property
    def largest_alive(self) -> int:
        return max(self.nodes.values(), default=0)


def read_cluster(max_cluster_cpus: int | None, max_node_cpus: int | None) -> ClusterShape:
    """The connected Ray cluster's alive nodes, and what its autoscaler may add: read from
    the autoscaler's config where it can be (``autoscaler_config``), else from the
    operator's settings (``max_cluster_cpus``, ``max_node_cpus``)."""
    import ray

    nodes = {
        node["NodeID"]: int(node["Resources"].get("CPU", 0))
        for node in ray.nodes()  # type: ignore[no-untyped-call]
        if node["Alive"] and int(node["Resources"].get("CPU", 0)) > 0
    }
    config = autoscaler_config(ray.get_runtime_context().gcs_address) or {}
    most, largest = config_max_cpus(config), config_largest_node(config)
    return ClusterShape(
        nodes,
        largest_node=largest or max_node_cpus or 0,
        max_cpus=most or max_cluster_cpus or 0,
    )


def autoscaler_config(gcs_address: str) -> Mapping[str, Any] | None:
    """The cluster launcher config the cluster's autoscaler runs with; None if there is
    none to read.

    Ray's GCS keeps the autoscaler's limits once an autoscaler reports them
    (``ray._private.state``); Ray 2.60's autoscalers do not, so the config file the
    cluster's autoscaler was started with is read instead: the autoscaler runs on the
    head node, as the orchestrator does. An autoscaler elsewhere (KubeRay's sidecar) is
    not found: set ``TRAINING_MAX_CLUSTER_CPUS`` and ``TRAINING_MAX_NODE_CPUS`` there."""
    import ray._private.state

    try:
        reported = ray._private.state.state.get_max_resources_from_cluster_config()
    except Exception:  # a private API: any failure means "not reported"
        logger.debug("no cluster config in the GCS", exc_info=True)
        reported = None
    if reported and 0 < reported.get("CPU", 0) < sys.maxsize:
        return {"max_cpus": int(reported["CPU"])}
    path = autoscaler_config_path(gcs_address)
    if path is None:
        return None
    try:
        config = yaml.safe_load(path.read_text())  # YAML, or the JSON of a test cluster
    except (OSError, yaml.YAMLError):
        logger.warning("cannot read the autoscaler's config %s", path, exc_info=True)
        return None
    return config if isinstance(config, Mapping) else None


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


def _node_types(config: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    types: Mapping[str, Mapping[str, Any]] = config.get("available_node_types") or {}
    return types


def _cpus(spec: Mapping[str, Any]) -> int:
    return int((spec.get("resources") or {}).get("CPU", 0))


def config_max_cpus(config: Mapping[str, Any]) -> int | None:
    """A cluster-launcher config's most CPUs: the head's and its worker types' CPUs times
    their ``max_workers``, the biggest first, within the config's ``max_workers``; None
    if the node types do not say their CPUs."""
    if "max_cpus" in config:  # reported by the GCS
        return int(config["max_cpus"])
    types = _node_types(config)
    head = types.get(config.get("head_node_type", ""), {})
    workers = sorted(
        (
            (_cpus(spec), int(spec.get("max_workers", 0)))
            for name, spec in types.items()
            if name != config.get("head_node_type")
        ),
        reverse=True,
    )
    room = int(config.get("max_workers", sum(count for _, count in workers)))
    total = _cpus(head)
    for cpus, count in workers:
        taken = min(count, room)
        total += cpus * taken
        room -= taken
    return total or None


def config_largest_node(config: Mapping[str, Any]) -> int | None:
    """The CPUs of a config's largest node type that can run tasks (the head's, and each
    worker type's that may have a node); None if no type says."""
    types = _node_types(config)
    head = config.get("head_node_type")
    sizes = [
        _cpus(spec)
        for name, spec in types.items()
        if name == head or int(spec.get("max_workers", 0)) > 0
    ]
    return max(sizes, default=0) or None
