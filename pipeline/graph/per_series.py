"""The train stage of a per-series job: chunks of series as one-CPU tasks in the job's
bundles."""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray import ObjectRef

from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.preprocess import PreparedData
from pipeline.graph.fanout import Starter, fan_out, stop_of
from pipeline.job_callbacks import JobCallbacks
from pipeline.placement import Placement
from pipeline.stages import PIPELINE_LOGGER, chunks
from pipeline.training.per_series import (
    SERIES_PER_TASK,
    SeriesBundle,
    bundle,
    series_names,
    train_series,
)
from pipeline.training.train import TrainedModel


def _series_task(
    data: list[ObjectRef[PreparedData]], config: TrainingConfig, names: tuple[str, ...]
) -> list[TrainedModel]:
    return train_series(ray.get(data[0]), config, names)


_remote_series = ray.remote(num_cpus=1)(_series_task)


def per_series_stage(
    context: JobContext,
    data: list[ObjectRef[Any]],
    placement: Placement,
    callbacks: JobCallbacks | None,
) -> SeriesBundle:
    """The train stage of a per-series job: a coordinator (no CPU) that trains chunks of
    series as one-CPU tasks named ``train:<job_id>:<chunk>``, one per CPU of the job's
    bundles at a time, and bundles their models."""
    prepared: PreparedData = ray.get(data[0])
    names = series_names(prepared)
    parts = chunks(names, SERIES_PER_TASK)
    logger = logging.getLogger(f"{PIPELINE_LOGGER}.train")
    logger.info(
        "training one model per series: %d series in %d task(s) of up to %d",
        len(names),
        len(parts),
        len(parts[0]),
    )

    def starter(number: int, part: tuple[str, ...]) -> Starter[list[TrainedModel]]:
        name = f"train:{context.job_id}:{number}"
        return lambda options: _remote_series.options(name=name, **options).remote(
            [data[0]], context.config, part
        )

    starters = [starter(number, part) for number, part in enumerate(parts)]
    done = fan_out(starters, placement.workers(), "training", stop_of(callbacks))
    models = [model for chunk in done for model in chunk]
    trained = bundle(prepared, names, models)
    logger.info(
        "%d series models, median best iteration %d; validation l1=%.4f",
        len(models),
        trained.best_iteration,
        trained.validation_scores["best_mae"],
    )
    return trained
