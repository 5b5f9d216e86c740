"""A training job's stages called one after another in this process, without Ray."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.context import JobContext
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.load import load_features
from pipeline.features.preprocess import preprocess
from pipeline.models.register import SavedModel, register
from pipeline.settings import PipelineSettings
from pipeline.stages import Stage, StageReport, run_stage
from pipeline.training.final_refit import refit_on_all_rows
from pipeline.training.per_series import (
    train_per_series,
)
from pipeline.training.train import train


def run_in_process(
    context: JobContext, settings: PipelineSettings, num_threads: int = 1
) -> tuple[SavedModel, list[StageReport]]:
    """The same stages, called one after another in this process (no Ray)."""
    config = context.config
    if config.enable_hpo or config.backtest is not None:
        raise ValueError("run_in_process runs no search and no backtest; launch() does")
    reports: list[StageReport] = []

    def step(stage: Stage, fn: Callable[..., Any], *args: Any) -> Any:
        output, report = run_stage(stage, fn, *args)
        reports.append(report)
        return output

    frame = step(Stage.LOAD_FEATURES, load_features, context, settings.features_root)
    data = step(Stage.PREPROCESS, preprocess, frame, config)
    fit = train_per_series if config.per_series else train
    model = step(Stage.TRAIN, fit, data, config, num_threads)
    evaluation = step(Stage.EVALUATE, evaluate, model, data, context.model_type, config)
    if config.refit_on_all_rows:
        model = step(Stage.FINAL_REFIT, refit_on_all_rows, model, data, config, num_threads)
    root = settings.artifacts_root
    saved = step(Stage.REGISTER, register, context, model, data, evaluation, None, root)
    return saved, reports
