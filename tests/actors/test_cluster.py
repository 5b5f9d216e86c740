"""Capacity follows the cluster, and the orchestrator asks the autoscaler for the CPUs its
queued jobs wait for: the decisions, without Ray (the cluster's size, the autoscaler and
its process are the test's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actors.capacity import (
    AutoscalerRequests,
    Bundles,
    Capacity,
    ClusterSize,
    autoscaler_config_path,
    config_max_cpus,
    job_cpus,
    requested_bundles,
)
from pipeline.config import TrainingConfig
from tests.cluster.autoscaling_cluster import fake_multinode_config


def test_slots_follow_the_alive_cpus_and_the_setting_caps_them() -> None:
    capacity = Capacity(ClusterSize(cpus=2, max_cpus=6))
    assert (capacity.slots, capacity.max_slots) == (2, 6)

    assert capacity.update(ClusterSize(cpus=6, max_cpus=6)) is True  # two workers joined
    assert capacity.slots == 6
    assert capacity.update(ClusterSize(cpus=6, max_cpus=6)) is False
    assert capacity.update(ClusterSize(cpus=2, max_cpus=6)) is True  # and left
    assert capacity.slots == 2

    capped = Capacity(ClusterSize(cpus=2, max_cpus=6), max_concurrent_jobs=4)
    assert (capped.slots, capped.max_slots) == (2, 4)
    capped.update(ClusterSize(cpus=6, max_cpus=6))
    assert capped.slots == 4


def test_no_cpus_means_no_slots() -> None:
    """A head without CPUs before any worker joined: jobs wait, none is refused."""
    assert Capacity(ClusterSize(cpus=0, max_cpus=8)).slots == 0


def test_a_jobs_cpus_count_each_data_parallel_worker() -> None:
    config = TrainingConfig(feature_set="s", target_variable="y")
    assert job_cpus(config) == 1
    assert job_cpus(config.model_copy(update={"n_workers": 2})) == 2
    wide = TrainingConfig.model_validate(
        {"feature_set": "s", "target_variable": "y", "n_workers": 2, "distributed": {"workers": 3}}
    )
    assert job_cpus(wide) == 6


def cpus(bundles: Bundles) -> list[float]:
    return [b["CPU"] for b in bundles]


@pytest.mark.parametrize(
    ("running", "queued", "max_cpus", "max_jobs", "expected"),
    [
        ([1, 1], [1, 1, 1, 1], 6, 6, [1, 1, 1, 1, 1, 1]),  # six one-CPU jobs, two running
        ([1, 1], [1] * 10, 6, 6, [1] * 6),  # never beyond the maximum
        ([2], [4, 1], 6, 6, [2, 4]),  # queue order first; the 1 no longer fits
        ([2], [4, 1], 7, 7, [2, 4, 1]),
        ([4], [3, 2], 6, 6, [4, 2]),  # a smaller job further back still fits
        ([1, 1], [1, 1, 1], 6, 3, [1, 1, 1]),  # max_concurrent_jobs 3: no CPUs for a 4th
        ([1, 1], [], 6, 6, []),  # nothing waits: no request
    ],
)
def test_the_request_is_the_running_and_queued_jobs_within_the_maximum(
    running: list[int], queued: list[int], max_cpus: int, max_jobs: int, expected: list[int]
) -> None:
    assert cpus(requested_bundles(running, queued, max_cpus, max_jobs)) == expected


def test_requests_are_sent_when_they_change_and_cleared_when_the_queue_drains() -> None:
    sent: list[Bundles] = []
    requests = AutoscalerRequests(sent.append)
    assert requests.last is None

    assert requests.update([], [], 6, 6) is True  # the first always: clears an old request
    assert requests.update([1, 1], [1, 1, 1, 1], 6, 6) is True
    assert requests.update([1, 1], [1, 1, 1, 1], 6, 6) is False
    assert requests.update([1, 1, 1, 1], [1, 1], 6, 6) is False  # same shape: not sent again
    assert requests.update([1] * 6, [], 6, 6) is True  # drained: cleared

    assert [cpus(b) for b in sent] == [[], [1] * 6, []]
    assert requests.last == []


def test_a_failed_request_is_sent_again() -> None:
    attempts: list[Bundles] = []

    def flaky(bundles: Bundles) -> None:
        attempts.append(bundles)
        if len(attempts) == 1:
            raise ConnectionError("GCS unreachable")

    requests = AutoscalerRequests(flaky)
    with pytest.raises(ConnectionError):
        requests.update([1], [1], 4, 4)
    assert requests.update([1], [1], 4, 4) is True
    assert len(attempts) == 2


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


def test_the_test_clusters_maximum() -> None:
    config = fake_multinode_config(2, 2, 2, 0.1, "127.0.0.1:1")
    assert config_max_cpus(config) == 6


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
