"""`trainctl up` stopped with SIGTERM while jobs run and wait, then started again: the
interrupted job is re-queued and completes, the waiting ones run, and nothing is doubled.

The service runs as a real `trainctl up` subprocess with a Ray cluster of its own
(``RAY_ADDRESS=local``), on SQLite under a temporary data directory.
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

PORT = 8797
API = f"http://127.0.0.1:{PORT}"
#: A few seconds of training, so SIGTERM lands while it runs.
LONG = {
    "hyperparameters": {"n_estimators": 4000, "learning_rate": 0.005},
    "early_stopping_rounds": 0,
}


def up(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RAY_ADDRESS": "local",
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
        "config": {"feature_set": "forecast_basic", "target_variable": "load_kw", **(config or {})},
    }
    response = httpx.post(f"{API}/ai/training/jobs/start", json=body, timeout=30)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def job(job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{API}/ai/training/jobs/{job_id}", timeout=30).json()
    return found


def test_sigterm_then_restart_requeues_and_completes_every_job(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    service = up(data_dir)
    try:
        interrupted = submit(LONG)
        waiting = [submit() for _ in range(2)]
        deadline = time.monotonic() + 60
        while job(interrupted)["stage"] is None:
            assert time.monotonic() < deadline, job(interrupted)
            time.sleep(0.2)
    finally:
        assert stop(service) == 0

    service = up(data_dir)
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
