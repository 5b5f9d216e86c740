"""ray_cluster.yaml passes Ray's own cluster-launcher validation, as `ray up` applies it,
and its service reads the admin key where `file_mounts` puts it. Its commands themselves
run in `tests/cluster/test_launcher_config.py`, which substitutes that path."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from ray.autoscaler._private.util import fillout_defaults, validate_config

CONFIG = Path(__file__).parents[1] / "ray_cluster.yaml"


def test_cluster_config_is_valid_and_mounts_the_admin_key_the_service_reads() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    validate_config(fillout_defaults(config))
    [service] = [c for c in config["head_start_ray_commands"] if "trainctl up" in c]
    [key_file] = re.findall(r"TRAINING_ADMIN_KEY_FILE=(\S+)", service)
    assert key_file in config["file_mounts"]
    assert "TRAINING_AUTH_ENABLED=true" in service


#: EFS's recommended NFS mount options.
EFS_OPTIONS = {
    "nfsvers=4.1",
    "rsize=1048576",
    "wsize=1048576",
    "hard",
    "timeo=600",
    "retrans=2",
    "noresvport",
}


def test_every_node_mounts_the_efs_data_directory_owned_by_the_ssh_user() -> None:
    """HPO jobs keep their Optuna journals in the data directory: every node must write to
    the same file system there, not to a directory of its own that root owns."""
    config = yaml.safe_load(CONFIG.read_text())
    [service] = [c for c in config["head_start_ray_commands"] if "trainctl up" in c]
    [data_dir] = re.findall(r"TRAINING_DATA_DIR=(\S+)", service)
    [mount] = [c for c in config["setup_commands"] if "mount -t nfs4" in c]  # every node's
    region, user = config["provider"]["region"], config["auth"]["ssh_user"]
    target = re.search(rf'"\$EFS_FILE_SYSTEM_ID\.efs\.{region}\.amazonaws\.com:/" ([^\s)]+)', mount)
    assert target is not None, mount
    assert target.group(1) == data_dir
    assert re.search(r"\bEFS_FILE_SYSTEM_ID=fs-\S+", mount), "a placeholder the operator sets"
    options = re.search(r"-o (\S+)", mount)
    assert options is not None
    assert set(options.group(1).split(",")) >= EFS_OPTIONS
    assert mount.index(f"chown {user}:{user} {data_dir}") > mount.index("mount -t nfs4")


def test_no_task_lands_on_the_head() -> None:
    """The orchestrator, the Serve replicas (holding no CPU) and the autoscaler live on
    the head; training runs on the workers."""
    config = yaml.safe_load(CONFIG.read_text())
    head_type = config["available_node_types"][config["head_node_type"]]
    assert head_type["resources"] == {"CPU": 0}
    [start] = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    assert "--num-cpus=0" in start.split()
    assert not any("--num-cpus" in c for c in config["worker_start_ray_commands"])
