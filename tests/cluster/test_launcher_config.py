"""The shipped cluster-launcher config, run on this machine: ``ray_cluster.yaml``'s
``head_start_ray_commands`` and ``worker_start_ray_commands``, each in ``bash -c`` as the
launcher runs them over SSH, start a head and a worker node with ``ray start`` and the
service on the head. A request without a key is refused (401), and a job submitted with
the operator's admin key completes.

The commands run as written but for what cannot exist here or would collide with what
runs here (each substitution must apply, so a changed config fails this test):

- ``s3://training-service-data/<prefix>?region=...`` -> a local directory per prefix: no
  S3 bucket here (the ``tests/cluster`` multi-node tests cover S3, on moto);
- ``/mnt/training`` (the EFS mount) -> a temporary directory;
- the RDS URL ``postgresql+asyncpg://training@training-db.internal...`` -> a new, empty
  database on this machine's PostgreSQL (``trainctl up`` migrates it);
- ``/home/ubuntu/training-admin.key`` (a ``file_mounts`` target) -> a temporary file, mode
  600, holding a new admin key, as the config's header says to write it;
- ``~/venv/bin/`` -> this test's own virtualenv's bin directory, ``~/trainctl.log`` -> a
  temporary file (the launcher's nodes have a home directory of their own);
- ``ray stop`` -> ``true``: it stops every Ray on the machine (this session's own too);
  the test stops only the processes of the sessions it started;
- ``6379`` (``--port`` and the worker's ``$RAY_HEAD_IP:6379``) -> a free port: Redis
  listens on 6379 here;
- ``--object-manager-port=8076`` -> a free port per node: head and worker share a machine;
- ``--autoscaling-config=~/ray_bootstrap_config.yaml`` -> dropped: the launcher writes that
  file, and with it the head would start AWS's node provider.

Added: ``--temp-dir`` of its own to each ``ray start``; in the commands' environment
``RAY_HEAD_IP`` (which the launcher sets: the head's address from its address file),
``RAY_TMPDIR`` (so that ``--address auto`` finds this head, not another Ray of this
machine), ``TRAINING_PORT`` (a free port: 8000 may be taken here) and
``RAY_AUTH_MODE=disabled``: a local ``ray.init()`` leaves a token in ``~/.ray/auth_token``,
with which ``ray start --head`` turns on Ray's token auth and the worker, not told, is
refused; a launcher's fresh node has no such token. ``RAY_ADDRESS`` is removed from it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ray.util.state import list_nodes

from tests.databases import fresh_database
from tests.network import free_port
from tests.serve_app.conftest import QUICK, TEN_WEEKS

#: Two `ray start`s, the service's start on an empty database, one small job.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

CONFIG = Path(__file__).parents[2] / "ray_cluster.yaml"
START_TIMEOUT = 240
JOB_TIMEOUT = 240
#: Seconds ``ray stop`` waits after its SIGTERM before it kills (its ``--grace-period``).
RAY_STOP_GRACE = 16


@dataclass
class Sessions:
    """The `bash -c` sessions of some commands: every process they started, Ray's daemons
    and workers included, keeps its session id (Ray does not call setsid)."""

    sessions: list[int] = field(default_factory=list)

    def run(self, command: str, env: dict[str, str]) -> None:
        """Run ``command`` to its end (a daemon it starts may hold no pipe of ours)."""
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                ["bash", "-c", command],
                env=env,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            self.sessions.append(process.pid)
            returncode = process.wait(timeout=START_TIMEOUT)
            output.seek(0)
            assert returncode == 0, f"{command}\n{output.read().decode(errors='replace')[-3000:]}"

    def processes(self) -> set[int]:
        """The ids of the live processes of these sessions."""
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if os.getsid(int(entry.name)) in self.sessions:
                        found.add(int(entry.name))
        return found

    def stop(self, grace: float = 60) -> None:
        """SIGTERM to every process of its sessions, SIGKILL to those left after ``grace``."""
        for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
            deadline = time.monotonic() + wait
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)


def localize(commands: list[str], substitutions: list[tuple[str, str]]) -> list[str]:
    """Apply each ``(pattern, replacement)`` to the commands; each must match somewhere."""
    for pattern, replacement in substitutions:
        counts = [len(re.findall(pattern, c)) for c in commands]
        assert sum(counts), f"{pattern!r} is no longer in {commands}"
        literal = replacement.replace("\\", "\\\\")
        commands = [re.sub(pattern, literal, c) for c in commands]
    return commands


def launcher_commands(
    machine: Machine, tmp_path: Path, database_url: str, key_file: Path
) -> tuple[list[str], list[str]]:
    """The config's head and worker start commands, with the module docstring's
    substitutions."""
    config = yaml.safe_load(CONFIG.read_text())
    common = [
        (r"~/venv/bin/", f"{Path(sys.executable).parent}/"),
        (r"^\S*ray stop$", "true"),
        (r"\b6379\b", str(free_port())),
    ]
    head = localize(
        config["head_start_ray_commands"],
        [
            *common,
            (r"--object-manager-port=8076", f"--object-manager-port={free_port()}"),
            (r" --autoscaling-config=~/ray_bootstrap_config\.yaml", ""),
            (r"ray start ", f"ray start --temp-dir={machine.head_temp_dir} "),
            (r"s3://training-service-data/features\?region=[\w-]+", str(tmp_path / "features")),
            (r"s3://training-service-data/artifacts\?region=[\w-]+", str(tmp_path / "models")),
            (r"/mnt/training", str(tmp_path / "efs")),
            (r"postgresql\+asyncpg://training@training-db\.internal\S*", database_url),
            (r"/home/ubuntu/training-admin\.key", str(key_file)),
            (r"~/trainctl\.log", str(tmp_path / "trainctl.log")),
        ],
    )
    worker = localize(
        config["worker_start_ray_commands"],
        [
            *common,
            (r"--object-manager-port=8076", f"--object-manager-port={free_port()}"),
            (r"ray start ", f"ray start --temp-dir={machine.worker_temp_dir} "),
        ],
    )
    for command in head + worker:
        assert not re.search(r"s3://|/mnt/|\.internal|~/|/home/ubuntu|6379|8076", command), command
    return head, worker


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database("postgresql", tmp_path) as url:
        yield url


@dataclass
class Machine:
    """The head's and the worker's commands, the temp dirs their Rays use: the head's is
    ``$RAY_TMPDIR/ray``, where ``--address auto`` looks for the head's address, as on a
    launcher's head node. Short: Ray's socket paths must fit in 107 characters."""

    ray_tmpdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ray-lc-")))
    worker_temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ray-lcw-")))
    head: Sessions = field(default_factory=Sessions)
    service: Sessions = field(default_factory=Sessions)
    worker: Sessions = field(default_factory=Sessions)

    @property
    def head_temp_dir(self) -> Path:
        return self.ray_tmpdir / "ray"

    def stop(self) -> None:
        """The service first (``trainctl up`` stops Serve and its orchestrator on
        SIGTERM), then the worker's Ray and the head's: only what these commands started.
        A head's GCS server and autoscaler monitor outlive a SIGTERM by over a minute, so
        the Rays get ``ray stop``'s grace (16 s) before SIGKILL, not the service's."""
        self.service.stop()
        self.worker.stop(grace=RAY_STOP_GRACE)
        self.head.stop(grace=RAY_STOP_GRACE)
        shutil.rmtree(self.ray_tmpdir, ignore_errors=True)
        shutil.rmtree(self.worker_temp_dir, ignore_errors=True)


@pytest.fixture
def machine() -> Iterator[Machine]:
    machine = Machine()
    try:
        yield machine
    finally:
        machine.stop()


def test_the_launcher_config_starts_an_authenticated_service_that_runs_a_job(
    tmp_path: Path, database_url: str, machine: Machine
) -> None:
    admin_key = f"trk_admin_{secrets.token_hex(32)}"
    key_file = tmp_path / "admin.key"
    key_file.write_text(admin_key)
    key_file.chmod(0o600)
    api_port = free_port()
    head_commands, worker_commands = launcher_commands(machine, tmp_path, database_url, key_file)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        RAY_TMPDIR=str(machine.ray_tmpdir), TRAINING_PORT=str(api_port), RAY_AUTH_MODE="disabled"
    )

    started = time.monotonic()
    *ray_commands, service_command = head_commands
    for command in ray_commands:
        machine.head.run(command, env)
    gcs_address = (machine.head_temp_dir / "ray_current_cluster").read_text().strip()
    machine.service.run(service_command, env)
    worker_env = {**env, "RAY_HEAD_IP": gcs_address.rsplit(":", 1)[0]}
    for command in worker_commands:
        machine.worker.run(command, worker_env)

    api = f"http://127.0.0.1:{api_port}"
    log = tmp_path / "trainctl.log"
    wait_until(lambda: _healthy(api), START_TIMEOUT, lambda: _tail(log))
    up = time.monotonic() - started
    alive = list_nodes(address=gcs_address, filters=[("state", "=", "ALIVE")])
    assert len(alive) == 2, alive

    assert httpx.get(f"{api}/ai/training/jobs", timeout=30).status_code == 401
    wrong_key = admin_key[:-1] + ("1" if admin_key.endswith("0") else "0")
    wrong = {"Authorization": f"Bearer {wrong_key}"}
    assert httpx.get(f"{api}/ai/training/jobs", headers=wrong, timeout=30).status_code == 401
    headers = {"Authorization": f"Bearer {admin_key}"}
    body = {
        "tenant_id": "default",
        "model_type": "forecast",
        "model_name": "launcher",
        "config": {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            **QUICK,
            **TEN_WEEKS,
        },
    }
    created = httpx.post(f"{api}/ai/training/jobs/start", json=body, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    job_url = f"{api}/ai/training/jobs/{created.json()['job_id']}"

    def job() -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(job_url, headers=headers, timeout=30).json()
        return found

    wait_until(lambda: job()["status"] in ("completed", "failed", "cancelled"), JOB_TIMEOUT, job)
    finished = job()
    assert finished["status"] == "completed", finished
    print(f"service up in {up:.0f} s; job done {time.monotonic() - started - up:.0f} s later")
    assert list((tmp_path / "models").rglob("model.txt")), "no model in the artifacts dir"
    assert (tmp_path / "features" / "forecast_basic").is_dir()
    assert "Admin key  admin" in _tail(log)
    assert admin_key.rsplit("_", 1)[1] not in _tail(log)


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log yet)"


def wait_until(done: Any, timeout: float, describe: Any) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, describe()
        time.sleep(0.5)
