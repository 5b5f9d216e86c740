"""LightGBM callbacks of a running training: stop when cancelled, report scores, log."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import lightgbm as lgb

from domain.errors import TrainingStopped

logger = logging.getLogger("pipeline.training.train")

LOG_EVERY = 25
#: How often a running training asks whether its job was cancelled (each ask is a call to
#: the orchestrator, so a short training asks once or not at all).
CANCEL_CHECK_SECONDS = 1.0
#: How often a running training reports its best validation scores so far.
LIVE_METRICS_SECONDS = 2.0

#: Receives the best validation scores so far while a booster trains.
LiveMetrics = Callable[[dict[str, float]], None]
Callback = Callable[[lgb.callback.CallbackEnv], None]


def stop_when(should_stop: Callable[[], bool]) -> Callback:
    """A LightGBM callback that ends training when ``should_stop`` says so; it is asked
    after a round once ``CANCEL_CHECK_SECONDS`` have passed since it was last asked."""
    asked = time.monotonic()

    def check(env: lgb.callback.CallbackEnv) -> None:
        nonlocal asked
        if time.monotonic() - asked < CANCEL_CHECK_SECONDS:
            return
        asked = time.monotonic()
        if should_stop():
            raise TrainingStopped(f"training stopped at round {env.iteration + 1}: cancelled")

    return check


class LiveScores:
    """A LightGBM callback that sends the best validation MAE and RMSE so far to ``sink``
    every ``LIVE_METRICS_SECONDS`` (and at a fit's first round, so they show early)."""

    def __init__(self, sink: LiveMetrics, every: float = LIVE_METRICS_SECONDS) -> None:
        self._sink = sink
        self._every = every
        self._sent = -math.inf
        self._best: dict[str, float] = {}

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        scores = {r[1]: r[2] for r in env.evaluation_result_list or []}
        if "l1" in scores:
            self._best["best_mae"] = min(scores["l1"], self._best.get("best_mae", math.inf))
        if "l2" in scores:
            rmse = math.sqrt(scores["l2"])
            self._best["best_rmse"] = min(rmse, self._best.get("best_rmse", math.inf))
        now = time.monotonic()
        if self._best and now - self._sent >= self._every:
            self._sent = now
            self._sink(dict(self._best))


class StopAt:
    """A LightGBM callback that ends boosting once the monotonic clock passes ``deadline``,
    as early stopping would: the booster keeps its best round so far on the first metric."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        # After record_evaluation (20) and early stopping (30). An instance attribute:
        # lgb.train gives every callback without one in its __dict__ an order of its own.
        self.order = 40
        self._best_score = math.inf
        self._best: tuple[int, list[Any]] = (0, [])

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        results = list(env.evaluation_result_list or [])
        if results:
            _, _, score, higher_is_better = results[0][:4]
            value = -score if higher_is_better else score
            if value < self._best_score:
                self._best_score = value
                self._best = (env.iteration, results)
        if time.monotonic() >= self.deadline:
            iteration, scores = self._best if results else (env.iteration, [])
            logger.info(
                "time budget spent at round %d: keeping round %d", env.iteration + 1, iteration + 1
            )
            raise lgb.callback.EarlyStopException(iteration, scores)


def log_progress(env: lgb.callback.CallbackEnv) -> None:
    iteration = env.iteration + 1
    if iteration % LOG_EVERY == 0:
        scores = ", ".join(
            f"{result[1]}={result[2]:.4f}" for result in env.evaluation_result_list or []
        )
        logger.info("iteration %d: validation %s", iteration, scores)
