"""The backtest stage: a coordinator and one task per window."""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray import ObjectRef

from pipeline.context import JobContext
from pipeline.evaluation.backtest import BacktestResult, Recipe, Window, all_rows, plan, run_window
from pipeline.features.preprocess import PreparedData
from pipeline.graph.gather import gather, stop_of
from pipeline.job_callbacks import JobCallbacks
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
    callbacks: JobCallbacks | None,
) -> BacktestResult:
    """The backtest stage: a coordinator (no CPU) that runs each window as a one-CPU task
    named ``backtest:<job_id>:<window>``; ``data`` comes boxed so the windows, not this
    task, read it (the coordinator reads only its timestamps)."""
    config = context.config
    spec = config.backtest
    assert spec is not None
    prepared: PreparedData = ray.get(data[0])
    stamps = all_rows(prepared)[2]
    windows = plan(stamps, config.horizon, spec.windows, config.backtest_step)
    recipe = Recipe.of(model)
    logger = logging.getLogger(f"{PIPELINE_LOGGER}.backtest")
    logger.info(
        "backtesting %d windows from %s, %d steps apart: %s each",
        len(windows),
        windows[0].origin,
        config.backtest_step,
        " + ".join(f"{o} {r} rounds" for o, _, r, _ in recipe.members),
    )
    refs = [
        _remote_window.options(name=f"backtest:{context.job_id}:{w.number}").remote(
            [data[0]], recipe, w
        )
        for w in windows
    ]
    results: list[WindowResult] = gather(refs, "backtest", stop_of(callbacks))
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
