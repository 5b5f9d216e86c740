"""A real MLflow tracking server for the mirror's tests (SQLite backend, artifacts served
from a local directory), which a test may stop and start again on the same port and store."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.network import free_port

START_TIMEOUT_SECONDS = 90


class MlflowServer:
    def __init__(self, root: Path, niceness: int = 0) -> None:
        self.root = root
        self.niceness = niceness
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the server without waiting for it (it takes seconds to import MLflow)."""
        mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
        log = (self.root / "server.log").open("ab")
        self._process = subprocess.Popen(
            [
                "nice",
                f"-n{self.niceness}",
                mlflow,
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.niceness:  # its own session is its own scheduling group: nice the group too
            with contextlib.suppress(OSError):
                Path(f"/proc/{self._process.pid}/autogroup").write_text(str(self.niceness))

    def wait_ready(self) -> None:
        """Return once the launched server answers its health check."""
        assert self._process is not None, "launch() the server first"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.root / 'server.log'}")
            try:
                if httpx.get(f"{self.uri}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"mlflow server did not answer in {START_TIMEOUT_SECONDS}s")

    def stop(self) -> None:
        if self._process is None:
            return
        group = os.getpgid(self._process.pid)  # the CLI and the web server it started
        os.killpg(group, signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self._process.wait()
        self._process = None
