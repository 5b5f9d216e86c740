"""Data-parallel training on a head plus two one-CPU worker nodes, run in its own process
by ``test_distributed`` (it needs a Ray cluster of its own, ``ray.cluster_utils.Cluster``).

It prints one JSON object of observations; the test asserts on them.
  job:     a job with ``distributed.workers=2`` through the orchestrator: its status, model
           and the log lines of its Ray Train workers
  memory:  on a set of two million rows, the peak resident memory of one process
           training the model (a fresh worker that receives the prepared data, as the train
           stage does) against each Ray Train worker's, and the models' validation MAE
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray.cluster_utils import Cluster

from actors.settings import NAMESPACE
from actors.submission import JobSubmission
from pipeline.config import TrainingConfig
from pipeline.distributed.ray_train import RayTrainFitter
from pipeline.features.preprocess import PreparedData, preprocess
from pipeline.settings import PipelineSettings
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import assemble, member_plans, train
from tests.cluster.multinode import client_for
from tests.network import free_port

SERIES = 100
HOURS = 20_000
#: Each node's object store (``Cluster`` gives 150 MiB by default): room for the data.
OBJECT_STORE = 2 * 2**30
CONFIG: dict[str, Any] = {
    "feature_set": "meters",
    "target_variable": "load_kw",
    "hyperparameters": {"objective": "regression", "n_estimators": 30},
    "quantiles": [],
}


def meters() -> pd.DataFrame:
    """``SERIES`` hourly meters of ``HOURS`` rows each."""
    frames = [load_series(seed, HOURS).assign(meter=f"m{seed:03d}") for seed in range(SERIES)]
    return pd.concat(frames, ignore_index=True)


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@ray.remote(num_cpus=1, max_calls=1)
def prepare(settings: PipelineSettings, config: TrainingConfig) -> PreparedData:
    return preprocess(FeatureStore(settings.features_root).load("meters"), config)


@ray.remote(num_cpus=1, max_calls=1)
def single_process(data: PreparedData, config: TrainingConfig) -> dict[str, Any]:
    """The train stage's work in a fresh worker: its peak RSS is the training's."""
    model = train(data, config, num_threads=1)
    return {"peak_rss": peak_rss(), "validation_mae": model.validation_scores["best_mae"]}


@ray.remote(num_cpus=0, max_calls=1)
def data_parallel(data: PreparedData, config: TrainingConfig) -> dict[str, Any]:
    fitter = RayTrainFitter(workers=2, cpus=1)
    plans = member_plans(config)
    model = assemble(data, plans, config.quantiles, config.early_stopping_rounds, fitter)
    return {
        "coordinator_peak_rss": peak_rss(),
        "workers": [
            {"node": r.node_id, "train_rows": r.train_rows, "peak_rss": r.peak_rss_bytes}
            for r in fitter.reports
        ],
        "validation_mae": model.validation_scores["best_mae"],
        "train_rows": len(data.train.y),
    }


def main() -> None:
    out: dict[str, Any] = {}
    head = {"num_cpus": 0, "dashboard_port": free_port(), "object_store_memory": OBJECT_STORE}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(2):
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
    os.environ["RAY_ADDRESS"] = cluster.address
    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    try:
        data_dir = Path(tempfile.mkdtemp())
        settings = PipelineSettings(data_dir=data_dir)
        FeatureStore(settings.features_root).put(
            "meters",
            meters(),
            timestamp_column="timestamp",
            target_column="load_kw",
            series_column="meter",
        )
        client = client_for(data_dir, "orchestrator-distributed", retries=0)
        job = client.submit(
            JobSubmission.model_validate(
                {
                    "tenant_id": "cluster",
                    "model_type": "forecast",
                    "model_name": "distributed",
                    "config": {**CONFIG, "distributed": {"workers": 2}},
                }
            )
        )
        done = client.wait(job.job_id, timeout=900)
        out["job"] = {
            "status": done.status.value,
            "error": done.error_message,
            "model_id": done.model_id,
            "worker_lines": [
                line.message
                for line in client.logs(job.job_id, tail=1000)
                if "peak RSS" in line.message
            ],
        }

        config = TrainingConfig.model_validate(CONFIG)
        data = prepare.remote(settings, config)
        out["memory"] = {
            "single": ray.get(single_process.remote(data, config)),
            "distributed": ray.get(data_parallel.remote(data, config)),
        }
    finally:
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
