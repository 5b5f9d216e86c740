"""The train stage: LightGBM with early stopping on the validation part."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb

from pipeline.config import TrainingConfig
from pipeline.preprocess import PreparedData

logger = logging.getLogger(__name__)

VALIDATION_METRICS = ("l1", "l2")
LOG_EVERY = 25
_ROUND_ALIASES = ("n_estimators", "num_iterations")


@dataclass(frozen=True)
class TrainedModel:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    curve: dict[str, list[float]]

    def summary(self) -> dict[str, object]:
        return {"params": self.params, "best_iteration": self.best_iteration, "curve": self.curve}


def train(data: PreparedData, config: TrainingConfig, num_threads: int) -> TrainedModel:
    """Fit a booster; ``num_threads`` should match the CPUs the calling task holds."""
    params = config.lightgbm_params()
    rounds = int(next((params.pop(a) for a in _ROUND_ALIASES if a in params), 100))
    params = {
        "objective": "regression",
        "metric": list(VALIDATION_METRICS),
        "verbosity": -1,
        "seed": 42,
        "deterministic": True,
        "force_row_wise": True,
        **params,
        "num_threads": num_threads,
    }
    train_set = lgb.Dataset(data.train.X, data.train.y, feature_name=data.feature_names)
    validation_set = lgb.Dataset(data.validation.X, data.validation.y, reference=train_set)
    curve: dict[str, Any] = {}
    callbacks = [lgb.record_evaluation(curve), _log_progress]
    if config.early_stopping_rounds:
        callbacks.append(
            lgb.early_stopping(config.early_stopping_rounds, first_metric_only=True, verbose=False)
        )
    logger.info(
        "training LightGBM on %d rows x %d features, up to %d rounds, %d thread(s)",
        len(data.train.y),
        len(data.feature_names),
        rounds,
        num_threads,
    )
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=rounds,
        valid_sets=[validation_set],
        valid_names=["validation"],
        callbacks=callbacks,
    )
    best = booster.best_iteration or booster.current_iteration()
    validation_curve = {
        name: list(map(float, values)) for name, values in curve["validation"].items()
    }
    logger.info(
        "best iteration %d of %d: validation l1=%.4f",
        best,
        booster.current_iteration(),
        validation_curve["l1"][best - 1],
    )
    params["num_iterations"] = rounds
    return TrainedModel(booster, params, best, validation_curve)


def _log_progress(env: lgb.callback.CallbackEnv) -> None:
    iteration = env.iteration + 1
    if iteration % LOG_EVERY == 0:
        scores = ", ".join(
            f"{result[1]}={result[2]:.4f}" for result in env.evaluation_result_list or []
        )
        logger.info("iteration %d: validation %s", iteration, scores)
