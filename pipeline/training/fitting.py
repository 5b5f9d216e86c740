"""Fitting one LightGBM booster: its parameters, its rows binned once per binning, a fit
early-stopped on the validation part, and its refit on training + validation rows.

In-process training (``train``), the search's trials (``pipeline.search.trials``) and
data-parallel training on Ray Train workers (``pipeline.distributed``) all fit here; they differ
only in where their rows are (``Datasets``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np

from pipeline.config import RefitMethod
from pipeline.features.preprocess import PreparedData
from pipeline.hyperparameters import NETWORK_PARAMETERS
from pipeline.training.boosters import grown_rounds
from pipeline.training.callbacks import Callback, log_progress

VALIDATION_METRICS = ("l1", "l2")
ROUND_ALIASES = ("num_iterations", "n_estimators")


def trained_params(booster: lgb.Booster) -> dict[str, Any]:
    """``booster``'s parameters for another like it: not its rounds (early stopping's
    ceiling) nor a data-parallel fit's network."""
    dropped = NETWORK_PARAMETERS.union(ROUND_ALIASES)
    return {k: v for k, v in booster.params.items() if k not in dropped}


#: The parameters a job may set (``KNOWN_HYPERPARAMETERS``) that change how LightGBM bins
#: the data; the others shape only the trees, so fits that agree on these share bins.
BINNING_PARAMETERS = ("max_bin", "seed")

#: The binning parameters of a fit, by name (``BINNING_PARAMETERS``).
Binning = tuple[tuple[str, Any], ...]


def booster_params(params: dict[str, Any], num_threads: int) -> tuple[dict[str, Any], int]:
    """LightGBM parameters for one fit, and the number of boosting rounds they ask for."""
    params = dict(params)
    given = {a: params.pop(a) for a in ROUND_ALIASES if a in params}  # LightGBM's own first
    rounds = int(next(iter(given.values()), 100))
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


def binning_of(params: dict[str, Any]) -> Binning:
    return tuple((name, params[name]) for name in BINNING_PARAMETERS if name in params)


class Datasets(Protocol):
    """A job's rows binned for one binning: the training part and the validation part an
    early-stopped fit watches, and the training + validation rows of a refit."""

    @property
    def train(self) -> lgb.Dataset: ...

    @property
    def validation(self) -> lgb.Dataset: ...

    @property
    def refit(self) -> lgb.Dataset: ...


class BinnedData:
    """A prepared set's rows binned by LightGBM, reusable by every fit with the same
    binning parameters (as Optuna's LightGBMTuner reuses its dataset): binning is a
    noticeable share of a short fit. Pre-filtering stays off so later fits may
    use another ``min_data_in_leaf``; the parts' arrays are kept (they are the set's own).
    The refit rows are binned when first asked for."""

    def __init__(self, data: PreparedData, params: dict[str, Any]) -> None:
        self.binning = binning_of(booster_params(params, 1)[0])
        self._data = data
        self.train = self._dataset(data.train.X, data.train.y).construct()
        fitted = data.validation.unlabelled()  # rows labelled as anomalies are not fitted on
        self.validation = self._dataset(fitted.X, fitted.y, reference=self.train).construct()
        self._refit: lgb.Dataset | None = None

    @property
    def refit(self) -> lgb.Dataset:
        if self._refit is None:
            validation = self._data.validation.unlabelled()
            X = np.vstack([self._data.train.X, validation.X])
            y = np.concatenate([self._data.train.y, validation.y])
            self._refit = self._dataset(X, y).construct()
        return self._refit

    def _dataset(
        self, X: np.ndarray, y: np.ndarray, reference: lgb.Dataset | None = None
    ) -> lgb.Dataset:
        return lgb.Dataset(
            X,
            y,
            feature_name=self._data.feature_names,
            categorical_feature=self._data.categorical or "auto",
            reference=reference,
            params={**dict(self.binning), "feature_pre_filter": False},
            free_raw_data=False,
        )


def bin_data(data: PreparedData, params: dict[str, Any]) -> BinnedData:
    """``data`` binned for fits with ``params``."""
    return BinnedData(data, params)


@dataclass(frozen=True)
class Fit:
    """One booster fitted on the training part and early-stopped on the validation part."""

    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    curve: dict[str, list[float]]


@dataclass(frozen=True)
class Fitted:
    """An early-stopped fit and its refit on training + validation rows."""

    fit: Fit
    refitted: lgb.Booster
    rounds: int


def early_stopped(
    params: dict[str, Any],
    rounds: int,
    early_stopping_rounds: int,
    datasets: Datasets,
    callbacks: Sequence[Callback] = (),
    network: Mapping[str, Any] | None = None,
) -> Fit:
    """Up to ``rounds`` rounds on the training part, watching the validation part (early
    stopping when ``early_stopping_rounds`` > 0). ``params`` are ``booster_params``';
    ``network`` adds data-parallel LightGBM's parameters to this fit alone."""
    curve: dict[str, Any] = {}
    watching = [lgb.record_evaluation(curve), *callbacks]
    if early_stopping_rounds:
        watching.append(
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
        )
    booster = lgb.train(
        {**params, **(network or {})},
        datasets.train,
        num_boost_round=rounds,
        valid_sets=[datasets.validation],
        valid_names=["validation"],
        callbacks=watching,
    )
    best = booster.best_iteration or booster.current_iteration()
    validation_curve = {
        name: list(map(float, values)) for name, values in curve["validation"].items()
    }
    return Fit(booster, {**params, "num_iterations": rounds}, best, validation_curve)


def refitted(
    fit: Fit,
    datasets: Datasets,
    train_rows: int,
    validation_rows: int,
    how: RefitMethod = "full",
    max_rounds: int | None = None,
    network: Mapping[str, Any] | None = None,
) -> Fitted:
    """``fit`` refitted on training + validation rows, its rounds grown with them up to
    ``max_rounds`` (``grown_rounds``), or kept as it is (``how`` ``none``)."""
    best = fit.best_iteration
    if how == "none":
        return Fitted(fit, fit.booster, best)
    params = {**fit.params, **(network or {})}
    del params["num_iterations"]
    rounds = grown_rounds(best, train_rows, validation_rows, max_rounds)
    return Fitted(fit, lgb.train(params, datasets.refit, num_boost_round=rounds), rounds)


def fit(
    data: PreparedData,
    params: dict[str, Any],
    early_stopping_rounds: int,
    num_threads: int,
    extra_callbacks: Sequence[Callback] = (),
    binned: BinnedData | None = None,
) -> Fit:
    """Fit on the training part, watching the validation part (early stopping when > 0).

    ``binned`` is used when it was binned as ``params`` bin; otherwise ``data`` is binned.
    """
    params, rounds = booster_params(params, num_threads)
    if binned is None or binned.binning != binning_of(params):
        binned = bin_data(data, params)
    callbacks = [log_progress, *extra_callbacks]
    return early_stopped(params, rounds, early_stopping_rounds, binned, callbacks)


def fit_and_refit(
    data: PreparedData,
    params: dict[str, Any],
    early_stopping_rounds: int,
    num_threads: int,
    extra_callbacks: Sequence[Callback],
    binned: dict[Binning, BinnedData],
    how: RefitMethod = "full",
    max_rounds: int | None = None,
) -> Fitted:
    """``fit``, then its refit on training + validation rows; ``binned`` holds the data
    binned per binning, shared by every booster of a model (and filled here)."""
    params, rounds = booster_params(params, num_threads)
    binning = binning_of(params)
    if binning not in binned:
        binned[binning] = bin_data(data, params)
    datasets = binned[binning]
    callbacks = [log_progress, *extra_callbacks]
    early = early_stopped(params, rounds, early_stopping_rounds, datasets, callbacks)
    rows = len(data.train.y), int(data.validation.normal.sum())
    return refitted(early, datasets, *rows, how, max_rounds)
