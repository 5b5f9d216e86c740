"""A multi-node scenario, run in its own process by ``test_multinode`` (it needs a Ray
cluster of its own: a head with no CPUs and two one-CPU worker nodes on this machine,
``ray.cluster_utils.Cluster``). Jobs go through the orchestrator's actor handle.

Feature sets and artifacts live on an S3-compatible server (moto, on 127.0.0.1) that the
worker nodes reach through ``pyarrow.fs``, as they would reach object storage on a cloud.

It prints one JSON object of observations; the test asserts on them.
  spread:  the train tasks of four jobs, by node
  storage: where those jobs' features were read and their models written, and what is there
  retried: a job whose worker node is removed mid-training (stage retries on)
  lost:    a job whose node is removed with stage retries off
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import ray
from moto.server import ThreadedMotoServer
from ray.cluster_utils import Cluster

from actors.client import OrchestratorClient, TrainingClient
from actors.orchestrator import JobOrchestrator
from actors.settings import NAMESPACE, OrchestratorSettings
from actors.start import start_orchestrator
from actors.submission import JobSubmission
from db.settings import DatabaseSettings
from pipeline.models.artifacts import MODEL_FILE, load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from serve_app.service import prepare_storage
from tests.network import free_port
from tests.ray_state import tasks

#: A second or two of training: one booster, no quantiles (where tasks run is under test).
SMALL = {"hyperparameters": {"n_estimators": 300, "objective": "regression"}, "quantiles": []}
#: About ten seconds of training on one CPU: long enough to lose a node in the middle.
LONG = {
    "hyperparameters": {"n_estimators": 6000, "learning_rate": 0.005, "objective": "regression"},
    "early_stopping_rounds": 0,
    "quantiles": [],
}


def submission(config: dict[str, Any] | None = None) -> JobSubmission:
    return JobSubmission.model_validate(
        {
            "tenant_id": "cluster",
            "model_type": "forecast",
            "model_name": "spread",
            "config": {
                "feature_set": "forecast_basic",
                "target_variable": "load_kw",
                **(config or SMALL),
            },
        }
    )


def client_for(
    data_dir: Path, name: str, retries: int, bucket: str | None = None
) -> TrainingClient:
    pipeline = PipelineSettings(
        data_dir=data_dir,
        stage_max_retries=retries,
        features_dir=bucket.format("features") if bucket else None,
        artifacts_dir=bucket.format("artifacts") if bucket else None,
    )
    url = DatabaseSettings(data_dir=data_dir).url
    asyncio.run(prepare_storage(url, pipeline))
    handle = start_orchestrator(url, pipeline, OrchestratorSettings(actor_name=name))
    orchestrator = OrchestratorClient(handle)
    ray.get(orchestrator.ref(JobOrchestrator.ready), timeout=60)
    return TrainingClient(orchestrator)


def start_s3() -> str:
    """An S3 server with one bucket; the bucket's URI pattern (``{}`` takes the prefix)."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"{host}:{port}"
    pafs.S3FileSystem(
        endpoint_override=endpoint, scheme="http", allow_bucket_creation=True
    ).create_dir("cluster")
    return f"s3://cluster/{{}}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


def stored_models(bucket: str) -> list[str]:
    """The model versions under the bucket's artifacts that load and predict."""
    parent = Location(bucket.format("artifacts")) / "cluster" / "spread"
    loadable = []
    for version in parent.children():
        directory = parent / version
        if (directory / MODEL_FILE).is_file():
            artifact = load_artifact(directory)
            if all(m.booster.num_trees() > 0 for m in artifact.members):
                loadable.append(version)
    return loadable


def stage_nodes(stage: str, job_id: str) -> list[str]:
    """The nodes the job's ``stage`` task ran on, one per attempt (the state API may lag)."""
    for _ in range(50):
        found = tasks(("name", "=", f"{stage}:{job_id}"), detail=True)
        nodes = [t.node_id for t in found if t.node_id]
        if nodes and len(nodes) == len(found):
            return nodes
        time.sleep(0.2)
    return nodes


def train_nodes(job_id: str) -> list[str]:
    return stage_nodes("train", job_id)


def kill_node_running_train(cluster: Cluster, job_id: str) -> str:
    """Wait for the job's train task to run, then remove its node; returns the node id."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = [
            t.node_id
            for t in tasks(("name", "=", f"train:{job_id}"), detail=True)
            if t.state == "RUNNING" and t.node_id  # the state API may not know the node yet
        ]
        if running:
            time.sleep(1.0)  # well into training
            node_id = running[0]
            [node] = [n for n in cluster.worker_nodes if n.node_id == node_id]
            cluster.remove_node(node, allow_graceful=False)
            return node_id
        time.sleep(0.2)
    raise TimeoutError("the train task never ran")


def main() -> None:
    out: dict[str, Any] = {}
    bucket = start_s3()  # before the nodes start, so that they inherit the credentials
    # A dashboard port of its own: the state API lives in the dashboard, and a test
    # session's Ray may hold the default one.
    head = {"num_cpus": 0, "dashboard_port": free_port()}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    # The state API would otherwise read the newest of the Ray instances on this machine,
    # which need not be this one when the test session runs its own.
    os.environ["RAY_ADDRESS"] = cluster.address
    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    try:
        retrying = client_for(
            Path(tempfile.mkdtemp()), "orchestrator-retrying", retries=3, bucket=bucket
        )
        jobs = [retrying.submit(submission()) for _ in range(4)]
        finished = [retrying.wait(job.job_id, timeout=180) for job in jobs]
        out["spread"] = {
            "statuses": [j.status.value for j in finished],
            "errors": [j.error_message for j in finished if j.error_message],
            "nodes": sorted({node for j in jobs for node in train_nodes(j.job_id)}),
        }
        out["storage"] = {
            "head": cluster.head_node.node_id if cluster.head_node else None,
            "read_on": sorted({n for j in jobs for n in stage_nodes("load_features", j.job_id)}),
            "written_on": sorted({n for j in jobs for n in stage_nodes("register", j.job_id)}),
            "models": stored_models(bucket),
        }

        job = retrying.submit(submission(LONG))
        killed = kill_node_running_train(cluster, job.job_id)
        cluster.add_node(num_cpus=1)
        done = retrying.wait(job.job_id, timeout=300)
        out["retried"] = {
            "status": done.status.value,
            "killed": killed,
            "train_nodes": train_nodes(job.job_id),
            "error": done.error_message,
        }

        failing = client_for(Path(tempfile.mkdtemp()), "orchestrator-no-retries", retries=0)
        job = failing.submit(submission(LONG))
        killed = kill_node_running_train(cluster, job.job_id)
        done = failing.wait(job.job_id, timeout=120)
        out["lost"] = {"status": done.status.value, "killed": killed, "error": done.error_message}
    finally:
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
