"""`trainctl up` and the benchmarks start a Ray of their own (``connect(None)``), even on a
machine where a crashed Ray left its address behind, in Ray's address file and in
``RAY_ADDRESS``: joining it failed ("When connecting to an existing cluster, num_cpus and
num_gpus must not be provided")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = """
import json, ray
from serve_app.service import connect
connect(None, num_cpus=1)
print(json.dumps({"cpus": ray.cluster_resources()["CPU"]}))
ray.shutdown()
"""


@pytest.mark.cluster
def test_connect_without_an_address_starts_its_own_ray_not_a_dead_one(
    dead_ray_tmpdir: Path,
) -> None:
    dead = (dead_ray_tmpdir / "ray" / "ray_current_cluster").read_text()
    env = {**os.environ, "RAY_TMPDIR": str(dead_ray_tmpdir), "RAY_ADDRESS": dead}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"cpus": 1.0}
