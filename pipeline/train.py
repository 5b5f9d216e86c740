"""The train stage: LightGBM with early stopping on the validation part."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from domain.errors import TrainingStopped
from pipeline.config import TrainingConfig
from pipeline.preprocess import PreparedData

if TYPE_CHECKING:
    from pipeline.hpo import SearchResult

logger = logging.getLogger(__name__)

VALIDATION_METRICS = ("l1", "l2")
LOG_EVERY = 25
#: How often (in boosting rounds) a running training asks whether its job was cancelled.
STOP_CHECK_ROUNDS = 25
_ROUND_ALIASES = ("n_estimators", "num_iterations")
#: The parameters a job may set (``KNOWN_HYPERPARAMETERS``) that change how LightGBM bins
#: the data; the others shape only the trees, so fits that agree on these share bins.
BINNING_PARAMETERS = ("max_bin", "seed")


@dataclass(frozen=True)
class TrainedModel:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    curve: dict[str, list[float]]
    search: dict[str, Any] | None = None

    def summary(self) -> dict[str, object]:
        return {"params": self.params, "best_iteration": self.best_iteration, "curve": self.curve}


def booster_params(params: dict[str, Any], num_threads: int) -> tuple[dict[str, Any], int]:
    """LightGBM parameters for one fit, and the number of boosting rounds they ask for."""
    params = dict(params)
    rounds = int(next((params.pop(a) for a in _ROUND_ALIASES if a in params), 100))
    return {
        "objective": "regression",
        "metric": list(VALIDATION_METRICS),
        "verbosity": -1,
        "seed": 42,
        "deterministic": True,
        "force_row_wise": True,
        **params,
        "num_threads": num_threads,
    }, rounds


@dataclass(frozen=True)
class BinnedData:
    """The training and validation parts binned by LightGBM, reusable by every fit with
    the same binning parameters (as Optuna's LightGBMTuner reuses its dataset): binning
    costs about a tenth of a 100-round fit on the demo data."""

    train: lgb.Dataset
    validation: lgb.Dataset
    binning: tuple[tuple[str, Any], ...]


def binning_of(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((name, params[name]) for name in BINNING_PARAMETERS if name in params)


def bin_data(data: PreparedData, params: dict[str, Any]) -> BinnedData:
    """Bin ``data`` for fits with ``params``. Pre-filtering stays off so later fits may use
    another ``min_data_in_leaf``; the raw arrays are kept (they are ``data``'s own)."""
    binning = binning_of(booster_params(params, 1)[0])
    dataset_params = {**dict(binning), "feature_pre_filter": False}
    train_set = lgb.Dataset(
        data.train.X,
        data.train.y,
        feature_name=data.feature_names,
        params=dataset_params,
        free_raw_data=False,
    )
    validation_set = lgb.Dataset(
        data.validation.X,
        data.validation.y,
        reference=train_set,
        params=dataset_params,
        free_raw_data=False,
    )
    return BinnedData(train_set.construct(), validation_set.construct(), binning)


def fit(
    data: PreparedData,
    params: dict[str, Any],
    early_stopping_rounds: int,
    num_threads: int,
    extra_callbacks: Sequence[Callable[[lgb.callback.CallbackEnv], None]] = (),
    binned: BinnedData | None = None,
) -> TrainedModel:
    """Fit on the training part, watching the validation part (early stopping when > 0).

    ``binned`` is used when it was binned as ``params`` bin; otherwise ``data`` is binned.
    """
    params, rounds = booster_params(params, num_threads)
    if binned is None or binned.binning != binning_of(params):
        binned = bin_data(data, params)
    curve: dict[str, Any] = {}
    callbacks = [lgb.record_evaluation(curve), _log_progress, *extra_callbacks]
    if early_stopping_rounds:
        callbacks.append(
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
        )
    booster = lgb.train(
        params,
        binned.train,
        num_boost_round=rounds,
        valid_sets=[binned.validation],
        valid_names=["validation"],
        callbacks=callbacks,
    )
    best = booster.best_iteration or booster.current_iteration()
    validation_curve = {
        name: list(map(float, values)) for name, values in curve["validation"].items()
    }
    params["num_iterations"] = rounds
    return TrainedModel(booster, params, best, validation_curve)


def train(
    data: PreparedData,
    config: TrainingConfig,
    num_threads: int,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedModel:
    """The train stage: fit a booster; ``num_threads`` matches the CPUs the task holds.

    ``should_stop`` is asked every ``STOP_CHECK_ROUNDS`` rounds; when it says yes (the job
    was cancelled) training stops with ``TrainingStopped``. Ray's own cancel can miss a
    task that was just starting, and a long training would then hold its CPU to the end.
    """
    logger.info(
        "training LightGBM on %d rows x %d features, %d thread(s)",
        len(data.train.y),
        len(data.feature_names),
        num_threads,
    )
    checks = [stop_when(should_stop)] if should_stop is not None else []
    model = fit(data, config.lightgbm_params(), config.early_stopping_rounds, num_threads, checks)
    logger.info(
        "best iteration %d of %d: validation l1=%.4f",
        model.best_iteration,
        model.booster.current_iteration(),
        model.curve["l1"][model.best_iteration - 1],
    )
    return model


def retrain_best(data: PreparedData, search: SearchResult, num_threads: int) -> TrainedModel:
    """The train stage after a search: the best trial's parameters and number of rounds,
    refitted on training + validation rows (the test part stays untouched)."""
    params, _ = booster_params(search.params, num_threads)
    X = np.vstack([data.train.X, data.validation.X])
    y = np.concatenate([data.train.y, data.validation.y])
    logger.info(
        "retraining trial %d's parameters on %d rows (train + validation), %d rounds",
        search.best_trial,
        len(y),
        search.best_iteration,
    )
    booster = lgb.train(
        params, lgb.Dataset(X, y, feature_name=data.feature_names), search.best_iteration
    )
    params["num_iterations"] = search.best_iteration
    return TrainedModel(booster, params, search.best_iteration, {}, search.summary())


def stop_when(should_stop: Callable[[], bool]) -> Callable[[lgb.callback.CallbackEnv], None]:
    """A LightGBM callback that ends training when ``should_stop`` says so."""

    def check(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % STOP_CHECK_ROUNDS == 0 and should_stop():
            raise TrainingStopped(f"training stopped at round {env.iteration + 1}: cancelled")

    return check


def _log_progress(env: lgb.callback.CallbackEnv) -> None:
    iteration = env.iteration + 1
    if iteration % LOG_EVERY == 0:
        scores = ", ".join(
            f"{result[1]}={result[2]:.4f}" for result in env.evaluation_result_list or []
        )
        logger.info("iteration %d: validation %s", iteration, scores)
