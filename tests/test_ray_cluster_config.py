"""ray_cluster.yaml passes Ray's own cluster-launcher validation, as `ray up` applies it."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.autoscaler._private.util import fillout_defaults, validate_config

CONFIG = Path(__file__).parents[1] / "ray_cluster.yaml"


def test_cluster_config_is_valid_and_starts_the_service() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    validate_config(fillout_defaults(config))
    head_commands = " ".join(config["head_start_ray_commands"])
    assert "trainctl up --address auto" in head_commands
    assert "TRAINING_DATABASE_URL=postgresql+asyncpg://" in head_commands
    assert config["available_node_types"]["worker"]["max_workers"] >= 1
    assert "TRAINING_FEATURES_DIR=s3://" in head_commands
    assert "TRAINING_ARTIFACTS_DIR=s3://" in head_commands
