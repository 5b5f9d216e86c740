"""`trainctl up` stopped with SIGTERM while jobs run and wait, then started again: the
interrupted job is re-queued and completes, the waiting ones run, and nothing is doubled.

The service runs as a real `trainctl up` subprocess, on SQLite under a temporary data
directory, on a machine where a crashed Ray left its address behind: `trainctl up` starts
a Ray cluster of its own rather than joining that one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

#: Two starts and stops of the service and three jobs, each step with a deadline of its own.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

PORT = 8797
API = f"http://127.0.0.1:{PORT}"
#: A second of training: one booster, no quantiles (the restart is under test).
SMALL = {"hyperparameters": {"n_estimators": 100, "objective": "regression"}, "quantiles": []}
#: A few seconds of training, so SIGTERM lands while it runs.
LONG = {
    "hyperparameters": {"n_estimators": 4000, "learning_rate": 0.005, "objective": "regression"},
    "early_stopping_rounds": 0,
    "quantiles": [],
}


def up(data_dir: Path, ray_tmpdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RAY_TMPDIR": str(ray_tmpdir),
        "TRAINING_DATA_DIR": str(data_dir),
        "TRAINING_PORT": str(PORT),
        "TRAINING_MAX_CONCURRENT_JOBS": "1",
    }
    trainctl = Path(sys.executable).parent / "trainctl"
    process = subprocess.Popen(
        [str(trainctl), "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{API}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None, "trainctl up exited while starting"
        time.sleep(0.5)
    process.kill()
    raise TimeoutError("trainctl up did not serve within 120 s")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=120)


def submit(config: dict[str, Any] | None = None) -> str:
    body = {
        "tenant_id": "restart",
        "model_type": "forecast",
        "model_name": "m",
        "config": {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            **(config or SMALL),
        },
    }
    response = httpx.post(f"{API}/ai/training/jobs/start", json=body, timeout=30)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def job(job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{API}/ai/training/jobs/{job_id}", timeout=30).json()
    return found


def test_sigterm_then_restart_requeues_and_completes_every_job(
    tmp_path: Path, dead_ray_tmpdir: Path
) -> None:
    data_dir = tmp_path / "data"
    service = up(data_dir, dead_ray_tmpdir)
    try:
        interrupted = submit(LONG)
        waiting = [submit() for _ in range(2)]
        deadline = time.monotonic() + 60
        while job(interrupted)["stage"] is None:
            assert time.monotonic() < deadline, job(interrupted)
            time.sleep(0.2)
    finally:
        assert stop(service) == 0

    service = up(data_dir, dead_ray_tmpdir)
    try:
        deadline = time.monotonic() + 240
        while not all(job(j)["status"] == "completed" for j in [interrupted, *waiting]):
            assert time.monotonic() < deadline, [job(j) for j in [interrupted, *waiting]]
            time.sleep(0.5)
        assert job(interrupted)["attempts"] == 2
        assert all(job(j)["attempts"] == 1 for j in waiting)
        models = httpx.get(f"{API}/ai/models", params={"tenant_id": "restart"}, timeout=30).json()
        assert sorted(m["job_id"] for m in models["models"]) == sorted([interrupted, *waiting])
    finally:
        assert stop(service) == 0
