"""The backtest stage: a coordinator and one task per window, in the job's bundles."""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray import ObjectRef

from pipeline.context import JobContext
from pipeline.evaluation.backtest import (
    BacktestResult,
    Recipe,
    Window,
    all_timestamps,
    plan,
    run_window,
)
from pipeline.features.preprocess import PreparedData
from pipeline.graph.fanout import Starter, fan_out, stop_of
from pipeline.job_callbacks import JobCallbacks
from pipeline.placement import Placement
from pipeline.stages import PIPELINE_LOGGER
from pipeline.summaries import WindowResult
from pipeline.training.train import TrainedModel

#: The window metrics a backtest writes to the job's log.
SHOWN = ("mae", "rmse", "mase", "coverage_80")


def _window_task(
    data: list[ObjectRef[PreparedData]], recipe: Recipe, window: Window
) -> WindowResult:
    return run_window(ray.get(data[0]), recipe, window)


_remote_window = ray.remote(num_cpus=1)(_window_task)


def backtest_stage(
    context: JobContext,
    data: list[ObjectRef[Any]],
    model: TrainedModel,
    placement: Placement,
    callbacks: JobCallbacks | None,
) -> BacktestResult:
    """The backtest stage: a coordinator (no CPU) that runs each window as a one-CPU task
    named ``backtest:<job_id>:<window>`` in the job's bundles beside the stage bundle (the
    evaluate stage runs there meanwhile); ``data`` comes boxed so the windows, not this
    task, read it (the coordinator reads only its timestamps)."""
    config = context.config
    spec = config.backtest
    assert spec is not None
    prepared: PreparedData = ray.get(data[0])
    stamps = all_timestamps(prepared)
    test_start = prepared.test.timestamps.min()
    windows = plan(stamps, config.horizon, spec.windows, config.backtest_step, test_start)
    recipe = Recipe.of(model)
    logger = logging.getLogger(f"{PIPELINE_LOGGER}.backtest")
    logger.info(
        "backtesting %d windows from %s, %d steps apart: %s each",
        len(windows),
        windows[0].origin,
        config.backtest_step,
        " + ".join(f"{o} {r} rounds" for o, _, r, _ in recipe.members),
    )

    def starter(window: Window) -> Starter[WindowResult]:
        name = f"backtest:{context.job_id}:{window.number}"
        return lambda options: _remote_window.options(name=name, **options).remote(
            [data[0]], recipe, window
        )

    bundles = placement.workers(beside_stages=True)
    results = fan_out([starter(w) for w in windows], bundles, "backtest", stop_of(callbacks))
    for result in results:
        logger.info(
            "window %d (%s .. %s, %d training rows): %s",
            result.number,
            result.origin,
            result.end,
            result.train_rows,
            ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items() if k in SHOWN),
        )
    return BacktestResult(results)
