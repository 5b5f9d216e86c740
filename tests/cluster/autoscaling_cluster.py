"""Ray's autoscaling test cluster (the fake multi-node provider) on a head of its own.

``ray.cluster_utils.AutoscalingCluster`` builds its config from an ``example.yaml`` the
installed wheel does not ship, and its ``start`` and ``shutdown`` run ``ray stop --force``,
which would end every Ray on the machine. This builds the same config (Ray's
``fake_multi_node/example.yaml`` with the given node types) and starts the head through
``ray.cluster_utils.Cluster`` on a port and directory of its own, so shutting down ends
only its own processes: the head's, and the worker nodes its autoscaler started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from tests.network import free_port

HEAD_TYPE = "ray.head.default"
WORKER_TYPE = "ray.worker.cpu"


def fake_multinode_config(
    head_cpus: int, worker_cpus: int, max_workers: int, idle_minutes: float, gcs: str
) -> dict[str, Any]:
    """``AutoscalingCluster``'s config: Ray's fake multi-node example with one worker type
    of ``0..max_workers`` nodes, whose nodes join the GCS at ``gcs``."""
    return {
        "cluster_name": "fake_multinode",
        "max_workers": max_workers,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs,  # not the default port 6379, which another Ray may hold
        },
        "available_node_types": {
            HEAD_TYPE: {"resources": {"CPU": head_cpus}, "node_config": {}, "max_workers": 0},
            WORKER_TYPE: {
                "resources": {"CPU": worker_cpus, "object_store_memory": 200 * 2**20},
                "node_config": {},
                "min_workers": 0,
                "max_workers": max_workers,
            },
        },
        "head_node_type": HEAD_TYPE,
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_minutes,
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


class FakeAutoscalingCluster:
    """A head of ``head_cpus`` whose autoscaler adds up to ``max_workers`` nodes of
    ``worker_cpus`` when there is demand and removes them after ``idle_minutes`` idle."""

    def __init__(
        self, head_cpus: int, worker_cpus: int, max_workers: int, idle_minutes: float = 0.1
    ) -> None:
        self._head_cpus = head_cpus
        self._worker_cpus = worker_cpus
        self._max_workers = max_workers
        self._idle_minutes = idle_minutes
        self._cluster: Cluster | None = None
        self._monitor_pid: int | None = None

    def start(self) -> str:
        """Start the head and its autoscaler; returns the cluster's address."""
        port = free_port()
        gcs = f"{ray.util.get_node_ip_address()}:{port}"  # type: ignore[no-untyped-call]
        config = fake_multinode_config(
            self._head_cpus, self._worker_cpus, self._max_workers, self._idle_minutes, gcs
        )
        config_file = Path(tempfile.mkstemp(suffix=".json")[1])
        config_file.write_text(json.dumps(config))
        # Read by the autoscaler (a child of the head): the fake provider refuses to run
        # without the first; the second makes it look every second rather than five.
        os.environ.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
        # ``Cluster`` writes its address to $RAY_TMPDIR/ray/ray_current_cluster (/tmp/ray,
        # which may not exist): a directory of this process's own, so no later ``ray.init``
        # on the machine finds this cluster's address once it is gone.
        os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="ray-as-addr-")
        (Path(os.environ["RAY_TMPDIR"]) / "ray").mkdir()
        head = {
            "num_cpus": self._head_cpus,
            "gcs_server_port": port,
            "dashboard_port": free_port(),
            "autoscaling_config": str(config_file),
            "temp_dir": tempfile.mkdtemp(prefix="ray-as-"),  # short: socket paths are bounded
        }
        self._cluster = Cluster(initialize_head=True, head_node_args=head)
        assert self._cluster.head_node is not None
        self._monitor_pid = self._cluster.head_node.all_processes["monitor"][0].process.pid
        return str(self._cluster.address)

    def shutdown(self) -> None:
        """Stop the head, then the worker nodes its autoscaler left running (the fake
        provider starts them as the autoscaler's children, which outlive it)."""
        left = descendants(self._monitor_pid) if self._monitor_pid is not None else []
        if self._cluster is not None:
            self._cluster.shutdown()  # type: ignore[no-untyped-call]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def alive_worker_nodes() -> int:
    """Alive nodes of the connected cluster, the head excepted."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return len([n for n in nodes if n["Alive"]]) - 1


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for(predicate: Any, timeout: float, what: str, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(poll)
