"""Data-parallel training on Ray Train: every booster of a model trained by ``workers``
LightGBM processes at once (``tree_learner=data``), each holding a shard of the
training rows from Ray Data.

One Ray Train run fits every booster of the model (members and quantile boosters, each
early-stopped, then refitted), so the worker group starts once: about ten seconds.
Every worker reads the whole validation part: LightGBM does not aggregate validation
metrics over its workers, and workers whose early stopping fires at different rounds
wait on each other forever (LightGBM issue #6351). The refit on training + validation
rows gives each worker its training shard and its slice of the validation rows. Ray
Train splits the training rows evenly, dropping fewer rows than there are workers.

Every worker bins its rows with the bins one process would find, from a sample of the
rows the coordinator shares (``pipeline.distributed.worker``). The coordinator (the train
stage) holds no CPU; the workers hold the job's CPUs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import ray
import ray.train
from ray.train import DataConfig
from ray.train.v2.api.config import FailureConfig, RunConfig, ScalingConfig
from ray.train.v2.api.exceptions import WorkerGroupError
from ray.train.v2.api.result import Result
from ray.train.v2.lightgbm.lightgbm_trainer import LightGBMTrainer
from ray.util.queue import Queue

from domain.errors import TrainingStopped
from pipeline.config import TrainingConfig
from pipeline.distributed.datasets import to_dataset, training_rows
from pipeline.distributed.worker import train_loop
from pipeline.features.partitions import PartitionedData
from pipeline.features.preprocess import PreparedData, PreparedFeatures, Split
from pipeline.search_results import SearchResult
from pipeline.training.callbacks import LiveMetrics
from pipeline.training.fitters import FitRequest
from pipeline.training.fitting import (
    Fit,
    Fitted,
)
from pipeline.training.train import TrainedModel, retrained_by, trained_by

logger = logging.getLogger("pipeline.training.train")
#: Ray Train retries a worker group that cannot start, and one whose node was preempted,
#: without end by default: a bundle lost with its node on a fixed cluster is never placed
#: again, and the job would stay running for ever, holding its CPUs. With these the job
#: fails, saying why.
NO_RETRIES = FailureConfig(max_failures=0, controller_failure_limit=1, max_preemption_failures=0)

#: LightGBM's default ``bin_construct_sample_cnt``: the rows it finds bins on.
BIN_SAMPLE_ROWS = 200_000
#: Blocks per worker at least, so that small sets spread over every worker too.
MIN_BLOCKS_PER_WORKER = 4


@dataclass(frozen=True)
class WorkerReport:
    """What one Ray Train worker held: its training rows and its peak resident memory."""

    rank: int
    node_id: str
    train_rows: int
    peak_rss_bytes: int


class RayTrainFitter:
    """Fits a model's boosters on ``workers`` Ray Train workers of ``cpus`` CPUs each;
    ``reports`` holds what each worker held in the last run. ``resource`` names the
    resource the workers' CPUs are counted in: a reservation's own CPUs
    (``pipeline.placement.Placement.nested_resource``), so that Ray Train's placement
    group sits inside the job's, or the cluster's ``CPU`` when None."""

    def __init__(
        self,
        workers: int,
        cpus: int,
        should_stop: Callable[[], bool] | None = None,
        live: LiveMetrics | None = None,
        resource: str | None = None,
    ) -> None:
        self._workers = workers
        self._cpus = cpus
        self._resource = resource
        #: The train task itself holds no CPU: no fit runs in it.
        self.local_threads: int | None = None
        self._should_stop = should_stop
        self._live = live
        self.reports: list[WorkerReport] = []

    def __call__(self, data: PreparedFeatures, requests: Sequence[FitRequest]) -> list[Fitted]:
        reports: Queue = Queue(actor_options={"num_cpus": 0})
        loop_config = {
            "requests": [
                (r.params, r.early_stopping_rounds, r.refit, r.max_rounds) for r in requests
            ],
            "train_rows": data.train_rows,
            "validation_rows": int(data.validation.normal.sum()),
            "feature_names": data.feature_names,
            "categorical": data.categorical,
            "num_threads": self._cpus,
            "should_stop": self._should_stop,
            "live": self._live,
            "reports": reports,
            "bin_samples": [ray.put(sample) for sample in bin_samples(data)],
        }
        trainer = LightGBMTrainer(
            cast(Callable[[dict[str, Any]], None], train_loop),  # returns rank 0's boosters
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(
                num_workers=self._workers,
                resources_per_worker={self._resource or "CPU": self._cpus},
                placement_strategy="PACK" if self._resource is None else "SPREAD",
            ),
            datasets={
                "train": training_rows(data, self._workers * MIN_BLOCKS_PER_WORKER),
                "validation": to_dataset(data.validation.unlabelled(), 1),
            },
            dataset_config=DataConfig(datasets_to_split=["train"]),
            run_config=RunConfig(failure_config=NO_RETRIES),
        )
        try:
            result = cast(Result, trainer.fit())  # Ray Train v2's, with return_value
        except WorkerGroupError as exc:
            stopped = [e for e in exc.worker_failures.values() if _is_stop(e)]
            if stopped:
                raise TrainingStopped(str(stopped[0])) from exc
            raise
        finally:
            self.reports = sorted(
                (WorkerReport(*r) for r in reports.get_nowait_batch(reports.qsize())),
                key=lambda r: r.rank,
            )
            reports.shutdown()
        for report in self.reports:
            logger.info(
                "Ray Train worker %d (node %s): %d training rows, peak RSS %.0f MB",
                report.rank,
                report.node_id[:12],
                report.train_rows,
                report.peak_rss_bytes / 2**20,
            )
        boosters: list[dict[str, Any]] = result.return_value or []
        return [_fitted(booster) for booster in boosters]


def _is_stop(error: BaseException) -> bool:
    """Whether a worker's error is (or was caused by) the job's cancellation."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, TrainingStopped):
            return True
        seen = seen.__cause__
    return "TrainingStopped" in str(error)


def bin_samples(data: PreparedFeatures) -> tuple[np.ndarray, np.ndarray]:
    """The rows LightGBM would bin on in one process: of the training part (the
    early-stopped fits), and of training + the validation rows a refit is fitted on (not
    those labelled as anomalies)."""
    fitted = data.validation.unlabelled()
    if isinstance(data, PreparedData):
        return bin_sample([data.train]), bin_sample([data.train, fitted])
    assert isinstance(data, PartitionedData)
    # The blocks' sample holds each training row with probability ``sample_fraction``.
    sample, train_rows = data.train.sample, data.train.rows
    drawn = sample_fraction(train_rows)
    wanted = sample_fraction(train_rows + len(fitted.y))
    rng = np.random.default_rng(0)
    kept = sample[rng.random(len(sample)) < wanted / drawn]
    validation = fitted.X[rng.random(len(fitted.y)) < wanted]
    return sample, np.vstack([kept, validation])


def sample_fraction(rows: int) -> float:
    """The share of ``rows`` a bin sample holds: all of them up to ``BIN_SAMPLE_ROWS``."""
    return min(1.0, BIN_SAMPLE_ROWS / rows) if rows else 1.0


def bin_sample(splits: Sequence[Split]) -> np.ndarray:
    """The rows of ``splits`` LightGBM would bin them on in one process: all of them up to
    its ``bin_construct_sample_cnt``, else that many drawn at random."""
    sizes = [len(split.y) for split in splits]
    rows = np.arange(sum(sizes))
    if len(rows) > BIN_SAMPLE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, BIN_SAMPLE_ROWS, replace=False))
    offsets = np.cumsum([0, *sizes])
    return np.vstack(
        [
            split.X[rows[(rows >= start) & (rows < end)] - start]
            for split, start, end in zip(splits, offsets[:-1], offsets[1:], strict=True)
        ]
    )


def _fitted(result: dict[str, Any]) -> Fitted:
    booster = lgb.Booster(model_str=result["model"])
    fitted = Fit(booster, result["params"], result["best_iteration"], result["curve"])
    return Fitted(fitted, lgb.Booster(model_str=result["refit"]), result["rounds"])


def train_distributed(
    data: PreparedFeatures,
    config: TrainingConfig,
    should_stop: Callable[[], bool] | None = None,
    live: LiveMetrics | None = None,
    resource: str | None = None,
) -> TrainedModel:
    """The train stage of a ``distributed`` job: the model ``pipeline.training.train.train`` makes,
    its boosters trained across Ray Train workers."""
    assert config.distributed is not None
    workers = config.distributed.workers
    logger.info(
        "training LightGBM (%s) data-parallel on %d Ray Train worker(s) x %d CPU(s): "
        "%d rows x %d features",
        " + ".join(config.objectives()),
        workers,
        config.train_cpus,
        data.train_rows,
        len(data.feature_names),
    )
    fitter = RayTrainFitter(workers, config.train_cpus, should_stop, live, resource)
    return trained_by(fitter, data, config)


def retrain_best_distributed(
    data: PreparedData,
    search: SearchResult,
    config: TrainingConfig,
    resource: str | None = None,
) -> TrainedModel:
    """The train stage of a ``distributed`` search: its best trials retrained across Ray
    Train workers (the trials themselves ran one per CPU, on the whole data)."""
    assert config.distributed is not None
    logger.info(
        "retraining the best trial of each objective (%s) data-parallel on %d Ray Train worker(s)",
        ", ".join(search.members),
        config.distributed.workers,
    )
    fitter = RayTrainFitter(config.distributed.workers, config.train_cpus, resource=resource)
    return retrained_by(fitter, data, search, config)
