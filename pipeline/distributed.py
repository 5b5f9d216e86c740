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
rows the coordinator shares (``_Shard``). The coordinator (the train stage) holds no
CPU; the workers hold the job's CPUs.
"""

from __future__ import annotations

import logging
import math
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import ray
import ray.train
from ray.train import DataConfig
from ray.train.lightgbm import get_network_params
from ray.train.v2.api.config import ScalingConfig
from ray.train.v2.api.exceptions import WorkerGroupError
from ray.train.v2.api.result import Result
from ray.train.v2.lightgbm.lightgbm_trainer import LightGBMTrainer
from ray.util.queue import Queue

from domain.errors import TrainingStopped
from pipeline.callbacks import LiveMetrics, log_progress
from pipeline.config import TrainingConfig
from pipeline.fitting import (
    Binning,
    Fit,
    Fitted,
    binning_of,
    booster_params,
    early_stopped,
    refitted,
)
from pipeline.partitions import LABEL, ROW, PartitionedData, block
from pipeline.preprocess import PreparedData, PreparedFeatures, Split
from pipeline.search_results import SearchResult
from pipeline.train import (
    FitRequest,
    TrainedModel,
    assemble,
    member_plans,
    search_plans,
    watching,
)

logger = logging.getLogger("pipeline.train")

#: Rows per Ray Data block: the unit a worker's shard is made of.
BLOCK_ROWS = 50_000
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
    ``reports`` holds what each worker held in the last run."""

    def __init__(
        self,
        workers: int,
        cpus: int,
        should_stop: Callable[[], bool] | None = None,
        live: LiveMetrics | None = None,
    ) -> None:
        self._workers = workers
        self._cpus = cpus
        #: The train task itself holds no CPU: no fit runs in it.
        self.local_threads: int | None = None
        self._should_stop = should_stop
        self._live = live
        self.reports: list[WorkerReport] = []

    def __call__(self, data: PreparedFeatures, requests: Sequence[FitRequest]) -> list[Fitted]:
        reports: Queue = Queue(actor_options={"num_cpus": 0})
        loop_config = {
            "requests": [(r.params, r.early_stopping_rounds) for r in requests],
            "feature_names": data.feature_names,
            "categorical": data.categorical,
            "num_threads": self._cpus,
            "train_rows": data.train_rows,
            "validation_rows": len(data.validation.y),
            "should_stop": self._should_stop,
            "live": self._live,
            "reports": reports,
            "bin_samples": [ray.put(sample) for sample in bin_samples(data)],
        }
        trainer = LightGBMTrainer(
            cast(Callable[[dict[str, Any]], None], _train_loop),  # returns rank 0's boosters
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(
                num_workers=self._workers, resources_per_worker={"CPU": self._cpus}
            ),
            datasets={
                "train": training_rows(data, self._workers * MIN_BLOCKS_PER_WORKER),
                "validation": to_dataset(data.validation, 1),
            },
            dataset_config=DataConfig(datasets_to_split=["train"]),
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


def training_rows(data: PreparedFeatures, min_blocks: int) -> ray.data.Dataset:
    """The training rows as a Ray Dataset: a partitioned job's blocks as they are (one
    per bucket), else the training part in ``min_blocks`` blocks or more."""
    if isinstance(data, PartitionedData):
        return ray.data.from_arrow_refs(data.train.blocks)
    assert isinstance(data, PreparedData)
    return to_dataset(data.train, min_blocks)


def bin_samples(data: PreparedFeatures) -> tuple[np.ndarray, np.ndarray]:
    """The rows LightGBM would bin on in one process: of the training part (the
    early-stopped fits), and of training + validation (the refits)."""
    if isinstance(data, PreparedData):
        return bin_sample([data.train]), bin_sample([data.train, data.validation])
    assert isinstance(data, PartitionedData)
    # The blocks' sample holds each training row with probability ``sample_fraction``.
    sample, train_rows = data.train.sample, data.train.rows
    drawn = sample_fraction(train_rows)
    wanted = sample_fraction(train_rows + len(data.validation.y))
    rng = np.random.default_rng(0)
    kept = sample[rng.random(len(sample)) < wanted / drawn]
    validation = data.validation.X[rng.random(len(data.validation.y)) < wanted]
    return sample, np.vstack([kept, validation])


def sample_fraction(rows: int) -> float:
    """The share of ``rows`` a bin sample holds: all of them up to ``BIN_SAMPLE_ROWS``."""
    return min(1.0, BIN_SAMPLE_ROWS / rows) if rows else 1.0


def to_dataset(split: Split, min_blocks: int) -> ray.data.Dataset:
    """A Ray Dataset of a split's features (one column each, by position), target and row
    number, put in the object store block by block (so no second copy of the matrix is
    ever whole in this process). Block ``b`` of ``n`` holds rows ``b, b + n, ...``: every
    shard then spans the whole period, and LightGBM's bins, which each worker finds for
    some features from its own rows, fit all of it."""
    count = max(min_blocks, math.ceil(len(split.y) / BLOCK_ROWS))
    refs: list[Any] = [ray.put(_interleaved(split, b, count)) for b in range(count)]
    return ray.data.from_arrow_refs(refs)


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


def _interleaved(split: Split, first: int, step: int) -> pa.Table:
    rows = np.arange(first, len(split.y), step)
    return block(split.X[rows], split.y[rows], rows)


def _fitted(result: dict[str, Any]) -> Fitted:
    booster = lgb.Booster(model_str=result["model"])
    fitted = Fit(booster, result["params"], result["best_iteration"], result["curve"])
    return Fitted(fitted, lgb.Booster(model_str=result["refit"]), result["rounds"])


def train_distributed(
    data: PreparedFeatures,
    config: TrainingConfig,
    should_stop: Callable[[], bool] | None = None,
    live: LiveMetrics | None = None,
) -> TrainedModel:
    """The train stage of a ``distributed`` job: the model ``pipeline.train.train`` makes,
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
    fitter = RayTrainFitter(workers, config.train_cpus, should_stop, live)
    return assemble(
        data,
        member_plans(config),
        config.quantiles,
        config.early_stopping_rounds,
        fitter,
        quantile_boosters=config.quantile_boosters,
        time_budget_s=config.time_budget_s,
    )


def retrain_best_distributed(
    data: PreparedData, search: SearchResult, config: TrainingConfig
) -> TrainedModel:
    """The train stage of a ``distributed`` search: its best trials retrained across Ray
    Train workers (the trials themselves ran one per CPU, on the whole data)."""
    assert config.distributed is not None
    logger.info(
        "retraining the best trial of each objective (%s) data-parallel on %d Ray Train worker(s)",
        ", ".join(search.members),
        config.distributed.workers,
    )
    fitter = RayTrainFitter(config.distributed.workers, config.train_cpus)
    return assemble(
        data,
        search_plans(search),
        config.quantiles,
        search.early_stopping_rounds,
        fitter,
        search=search.summary(),
        quantile_boosters=config.quantile_boosters,
    )


# What runs on each Ray Train worker.


def _train_loop(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Fit, then refit, each requested booster on this worker's shard; rank 0 watches the
    job (cancel checks, live scores) and returns the boosters."""
    context = ray.train.get_context()
    shard = _Shard(config, context.get_world_rank(), context.get_world_size())
    watch = watching(config["should_stop"], config["live"])
    callbacks = [log_progress, *watch] if context.get_world_rank() == 0 else []
    network = _Network()
    try:
        results = [
            _fit_and_refit(params, stopping, config, network, shard, callbacks)
            for params, stopping in config["requests"]
        ]
    finally:
        network.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    node = ray.get_runtime_context().get_node_id()
    config["reports"].put((context.get_world_rank(), node, shard.train_rows, peak))
    return results


class _Shard:
    """This worker's rows as LightGBM datasets: its training shard, the whole validation
    part, and its refit rows (the shard and its share of the validation rows).

    Every worker bins them alike, with the bins one process would find (from the sample
    the coordinator shares): left to itself, data-parallel LightGBM bins each feature on
    one worker's rows, and its models forecast 10-12 % worse on the demo set.
    """

    def __init__(self, config: dict[str, Any], rank: int, size: int) -> None:
        self._names = config["feature_names"]
        self._categorical: list[str] | Literal["auto"] = config["categorical"] or "auto"
        self._samples = config["bin_samples"]
        self._datasets: dict[Binning, _Datasets] = {}
        train = _read(ray.train.get_dataset_shard("train"))
        valid = _read(ray.train.get_dataset_shard("validation"))
        mine = valid.filter(pa.array(valid[ROW].to_numpy() % size == rank))
        self._train = _features_and_target(train)
        self._valid = _features_and_target(valid)
        self._refit = _features_and_target(pa.concat_tables([train, mine]))
        self.train_rows = len(self._train[1])

    def datasets(self, params: dict[str, Any]) -> _Datasets:
        """Training, validation and refit datasets binned as ``params`` bin."""
        binning = binning_of(params)
        if binning not in self._datasets:
            fitting, refitting = (self._bins(sample, binning) for sample in self._samples)
            self._datasets[binning] = _Datasets(
                self._dataset(*self._train, reference=fitting),
                self._dataset(*self._valid, reference=fitting),
                self._dataset(*self._refit, reference=refitting),
            )
        return self._datasets[binning]

    def _bins(self, sample: ray.ObjectRef[np.ndarray], binning: Binning) -> lgb.Dataset:
        """A dataset of ``sample`` that others take their bins from (``reference``)."""
        X = ray.get(sample)
        params = {**dict(binning), "feature_pre_filter": False}
        return lgb.Dataset(
            X,
            feature_name=self._names,
            categorical_feature=self._categorical,
            params=params,
        ).construct()

    def _dataset(self, X: pa.Table, y: np.ndarray, reference: lgb.Dataset) -> lgb.Dataset:
        """Rows binned as ``reference``; LightGBM bins them when a fit starts (and keeps
        them raw: a fit with another binning bins them again)."""
        return lgb.Dataset(
            X,
            y,
            feature_name=self._names,
            categorical_feature=self._categorical,
            reference=reference,
            free_raw_data=False,
        )


@dataclass(frozen=True)
class _Datasets:
    train: lgb.Dataset
    validation: lgb.Dataset
    refit: lgb.Dataset


class _Network:
    """LightGBM's network between the workers, opened by the first fit and kept for the
    others: it listens on the port Ray Train chose, which a second opening could not bind
    again while the first one's connections linger."""

    def __init__(self) -> None:
        self._opener: lgb.Booster | None = None

    def params(self) -> dict[str, Any]:
        """Parameters of the next fit: the network's address list only for the first."""
        network = get_network_params()
        shared = {
            "tree_learner": "data",
            "pre_partition": True,
            "num_machines": network["num_machines"],
        }
        return shared if self._opener is not None else {**network, **shared}

    def opened_by(self, booster: lgb.Booster) -> None:
        if self._opener is None:
            self._opener = booster

    def close(self) -> None:
        if self._opener is not None:
            self._opener.free_network()


def _fit_and_refit(
    params: dict[str, Any],
    stopping: int,
    config: dict[str, Any],
    network: _Network,
    shard: _Shard,
    callbacks: list[Any],
) -> dict[str, Any]:
    params, rounds = booster_params(params, config["num_threads"])
    datasets = shard.datasets(params)
    fit = early_stopped(params, rounds, stopping, datasets, callbacks, network.params())
    network.opened_by(fit.booster)
    result = refitted(
        fit, datasets, config["train_rows"], config["validation_rows"], network.params()
    )
    return {
        "model": fit.booster.model_to_string(num_iteration=-1),
        "params": fit.params,
        "best_iteration": fit.best_iteration,
        "curve": fit.curve,
        "refit": result.refitted.model_to_string(),
        "rounds": result.rounds,
    }


def _read(shard: Any) -> pa.Table:
    """A shard's rows: its Arrow blocks as one table, not copied (LightGBM bins Arrow
    columns where they are)."""
    return pa.concat_tables(shard.iter_batches(batch_size=None, batch_format="pyarrow"))


def _features_and_target(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    features = [name for name in table.column_names if name not in (LABEL, ROW)]
    return table.select(features), table[LABEL].to_numpy()
