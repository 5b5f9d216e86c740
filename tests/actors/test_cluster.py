"""The cluster's shape: its alive nodes, its largest node and its most CPUs, read from the
autoscaler's config (the config and the autoscaler's process are the test's)."""

from __future__ import annotations

from pathlib import Path

import yaml

from actors.cluster import (
    ClusterShape,
    autoscaler_config_path,
    config_largest_node,
    config_max_cpus,
)
from tests.cluster.autoscaling_cluster import fake_multinode_config


def test_a_launcher_configs_maximum_counts_the_head_and_its_workers() -> None:
    """``ray_cluster.yaml`` as the launcher bootstraps it (resources filled in from the
    instance types): a 4-vCPU head and up to eight 8-vCPU workers."""
    config = yaml.safe_load(Path("ray_cluster.yaml").read_text())
    types = config["available_node_types"]
    types["head"]["resources"] = {"CPU": 4}
    types["worker"]["resources"] = {"CPU": 8}
    assert config_max_cpus(config) == 4 + 8 * 8

    config["max_workers"] = 3  # the cluster-wide cap binds before the type's
    assert config_max_cpus(config) == 4 + 8 * 3
    types["small"] = {"resources": {"CPU": 2}, "max_workers": 4}
    assert config_max_cpus(config) == 4 + 8 * 3, "the biggest workers first"
    types["worker"]["max_workers"] = 2
    config["max_workers"] = 5
    assert config_max_cpus(config) == 4 + 8 * 2 + 2 * 3


def test_the_test_clusters_maximum_and_largest_node() -> None:
    config = fake_multinode_config(2, 2, 2, 0.1, "127.0.0.1:1")
    assert config_max_cpus(config) == 6
    assert config_largest_node(config) == 2


def test_the_largest_node_is_the_largest_type_that_may_have_a_node() -> None:
    config = yaml.safe_load(Path("ray_cluster.yaml").read_text())
    types = config["available_node_types"]
    types["head"]["resources"] = {"CPU": 0}  # the head runs no tasks
    types["worker"]["resources"] = {"CPU": 8}
    assert config_largest_node(config) == 8
    types["big"] = {"resources": {"CPU": 64}, "max_workers": 0}
    assert config_largest_node(config) == 8, "a type that may have no node is no node"
    assert config_largest_node({}) is None


def test_a_shape_never_says_less_than_its_alive_nodes() -> None:
    shape = ClusterShape({"a": 2, "b": 4}, largest_node=2, max_cpus=3)
    assert (shape.cpus, shape.largest_alive, shape.largest_node, shape.max_cpus) == (6, 4, 4, 6)
    assert ClusterShape.of(2, 2).nodes == {"node-0": 2, "node-1": 2}


def test_the_autoscalers_config_is_found_by_its_clusters_address(tmp_path: Path) -> None:
    def process(pid: int, *args: str) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes("\0".join(args).encode() + b"\0")

    monitor = "/venv/lib/python3.11/site-packages/ray/autoscaler/_private/monitor.py"
    process(10, "python", "-u", monitor, "--gcs-address=10.0.0.1:6379", "--autoscaling-config=/a")
    process(11, "python", "-u", monitor, "--gcs-address=10.0.0.2:6379", "--autoscaling-config=/b")
    process(12, "raylet", "--gcs-address=10.0.0.3:6379", "--autoscaling-config=/c")

    assert autoscaler_config_path("10.0.0.2:6379", tmp_path) == Path("/b")
    assert autoscaler_config_path("10.0.0.3:6379", tmp_path) is None
    assert autoscaler_config_path("10.0.0.9:6379", tmp_path) is None
