"""Session-wide fixtures: one small local Ray cluster, one S3-compatible server, one
MLflow tracking server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pyarrow.fs as pafs
import pytest
import ray
from moto.server import ThreadedMotoServer

from actors.settings import NAMESPACE
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
    ray.init(
        num_cpus=2,
        namespace=NAMESPACE,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
    )
    yield
    ray.shutdown()


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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server; the deployed service mirrors into it (each database
    backend under its own prefix)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    yield server
    server.stop()
