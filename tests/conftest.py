"""Session-wide fixtures: one small local Ray cluster, one S3-compatible server, one
MLflow tracking server."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import ray
from moto.server import ThreadedMotoServer

from actors.settings import NAMESPACE
from tests.dead_ray import dead_cluster_tmpdir
from tests.mlflow_server import MlflowServer

# Credentials for the local S3 server, set before Ray starts so that its workers inherit
# them; no test reaches a real cloud.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A Ray of the suite's own: never one found on the machine (``address="local"``), and
    its sessions in a directory of its own."""
    temp_dir = tempfile.mkdtemp(prefix="ray-tests-")  # short: Ray's socket paths are bounded
    ray.init(
        address="local",
        num_cpus=2,
        namespace=NAMESPACE,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
        _temp_dir=temp_dir,
        # Metrics reach Ray's Prometheus endpoint within a second, not ten.
        _system_config={"metrics_report_interval_ms": 1000},
    )
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def dead_ray_tmpdir() -> Iterator[Path]:
    """A ``RAY_TMPDIR`` whose address file names a crashed cluster (``tests.dead_ray``)."""
    with dead_cluster_tmpdir() as root:
        yield root


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``host:port`` of moto's S3 server on 127.0.0.1."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket; its URI prefix, with the endpoint in the query."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    admin = pafs.S3FileSystem(
        endpoint_override=s3_endpoint, scheme="http", allow_bucket_creation=True
    )
    admin.create_dir(bucket)
    return f"s3://{bucket}/{{}}?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1"


@pytest.fixture(scope="session", autouse=True)
def _early_mlflow_server(request: pytest.FixtureRequest) -> None:
    """In a session with tests that need the tracking server, start it with the session:
    it takes seconds to import MLflow, which it then does beside the first tests."""
    if any("mlflow_server" in getattr(item, "fixturenames", ()) for item in request.session.items):
        request.getfixturevalue("mlflow_server")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server; the deployed service mirrors into it (each database
    backend under its own prefix). It starts in the background, below the tests' priority;
    a test that calls it directly waits for it (``wait_ready``)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), niceness=10)
    server.launch()
    yield server
    server.stop()
