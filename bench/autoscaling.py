"""Six one-CPU jobs submitted at once, from the submits to the last completion, on three
clusters side by side (each its own Ray, the service started on it as ``trainctl up``
would, SQLite):

  autoscaling  a 2-CPU head whose autoscaler (Ray's fake multi-node provider) adds up to
               two 2-CPU workers while jobs wait (``tests.cluster.autoscaling``)
  fixed-2      the 2-CPU head alone
  fixed-6      the head and both workers from the start

All nodes share this machine's cores, so the "6 CPUs" are six logical CPUs on however many
cores there are: on 2 cores the ratio shows what the service's scaling costs (workers
started on demand, then joined) rather than what real extra machines would give.

Usage: ``python -m bench.autoscaling`` (each cluster runs in a subprocess of its own).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from typing import Any

from ray.cluster_utils import Cluster

from tests.cluster.autoscaling import JOBS, run
from tests.cluster.autoscaling_cluster import FakeAutoscalingCluster
from tests.network import free_port

SETUPS = ("autoscaling", "fixed-2", "fixed-6")


def measure(setup: str) -> dict[str, Any]:
    """Run the six jobs on ``setup``'s cluster (in this process)."""
    if setup == "autoscaling":
        scaling = FakeAutoscalingCluster(head_cpus=2, worker_cpus=2, max_workers=2)
        address = scaling.start()
        try:
            return run(address, wait_for_scale_down=False)
        finally:
            scaling.shutdown()
    head = {"num_cpus": 2, "dashboard_port": free_port(), "temp_dir": tempfile.mkdtemp()}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    if setup == "fixed-6":
        for _ in range(2):
            cluster.add_node(num_cpus=2)
    try:
        return run(str(cluster.address), wait_for_scale_down=False)
    finally:
        cluster.shutdown()  # type: ignore[no-untyped-call]


def in_subprocess(setup: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.autoscaling", "--setup", setup],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{setup} failed:\n{result.stderr[-4000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setup", choices=SETUPS, help="run one cluster (internal)")
    args = parser.parse_args()
    if args.setup:
        json.dump(measure(args.setup), sys.stdout)
        return
    seconds: dict[str, float] = {}
    for setup in SETUPS:
        out = in_subprocess(setup)
        completed = sum(1 for j in out["jobs"] if j["status"] == "completed")
        peak = max(s["total_capacity"] for _, _, s in out["samples"])
        seconds[setup] = out["seconds"]
        print(
            f"{setup:<12} {out['seconds']:>6.1f} s  {completed}/{JOBS} completed, "
            f"{len(out['refused'])} refused, capacity up to {peak}",
            flush=True,
        )
    for setup in ("fixed-2", "fixed-6"):
        print(f"autoscaling / {setup}: {seconds['autoscaling'] / seconds[setup]:.2f}")


if __name__ == "__main__":
    main()
