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
