"""What runs on each Ray Train worker of a data-parallel fit (``ray_train``): its shard of
the rows binned as one process would bin them, LightGBM's network between the workers,
and each requested booster fitted and refitted (``pipeline.training.fitting``)."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import ray
import ray.train
from ray.train.lightgbm import get_network_params

from pipeline.config import RefitMethod
from pipeline.features.partitions import LABEL, ROW
from pipeline.training.callbacks import log_progress
from pipeline.training.fitting import (
    Binning,
    binning_of,
    booster_params,
    early_stopped,
    refitted,
)
from pipeline.training.train import (
    watching,
)


def train_loop(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Fit, then refit, each requested booster on this worker's shard; rank 0 watches the
    job (cancel checks, live scores) and returns the boosters."""
    context = ray.train.get_context()
    shard = _Shard(config, context.get_world_rank(), context.get_world_size())
    watch = watching(config["should_stop"], config["live"])
    callbacks = [log_progress, *watch] if context.get_world_rank() == 0 else []
    network = _Network()
    try:
        results = [
            _fit_and_refit(params, stopping, (how, most), config, network, shard, callbacks)
            for params, stopping, how, most in config["requests"]
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
    one worker's rows, and its models forecast worse than one process's.
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
    refit: tuple[RefitMethod, int | None],
    config: dict[str, Any],
    network: _Network,
    shard: _Shard,
    callbacks: list[Any],
) -> dict[str, Any]:
    params, rounds = booster_params(params, config["num_threads"])
    datasets = shard.datasets(params)
    fit = early_stopped(params, rounds, stopping, datasets, callbacks, network.params())
    network.opened_by(fit.booster)
    rows = config["train_rows"], config["validation_rows"]
    result = refitted(fit, datasets, *rows, *refit, network=network.params())
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
