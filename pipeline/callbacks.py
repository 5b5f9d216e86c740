"""LightGBM callbacks of a running training: stop when cancelled, report scores, log."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import lightgbm as lgb

from domain.errors import TrainingStopped

logger = logging.getLogger("pipeline.train")

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


def log_progress(env: lgb.callback.CallbackEnv) -> None:
    iteration = env.iteration + 1
    if iteration % LOG_EVERY == 0:
        scores = ", ".join(
            f"{result[1]}={result[2]:.4f}" for result in env.evaluation_result_list or []
        )
        logger.info("iteration %d: validation %s", iteration, scores)
