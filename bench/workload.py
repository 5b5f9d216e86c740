"""The benchmark's unit of work: one small forecast training on the demo feature set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.load import load_features
from pipeline.features.preprocess import PreparedData, preprocess
from pipeline.settings import PipelineSettings

#: A small job, as these benchmarks have measured since the seed: 100 rounds at rate 0.1 of
#: one booster, no quantiles. (The service's default job is a blend of two boosters with
#: up to 1000 rounds at rate 0.05, plus quantile boosters: about 10 s of one CPU here.)
CONFIG: dict[str, Any] = {
    "feature_set": "forecast_basic",
    "target_variable": "load_kw",
    "hyperparameters": {"n_estimators": 100, "learning_rate": 0.1, "objective": "regression"},
    "quantiles": [],
}


def bench_context(job_id: str) -> JobContext:
    return JobContext(
        job_id=job_id,
        tenant_id="bench",
        model_type=ModelType.FORECAST,
        model_name="bench_model",
        config=TrainingConfig.model_validate(CONFIG),
    )


def job_body() -> dict[str, Any]:
    return {
        "tenant_id": "bench",
        "model_type": "forecast",
        "model_name": "bench_model",
        "config": CONFIG,
    }


def prepared(data_dir: Path, config: TrainingConfig) -> PreparedData:
    """The demo feature set under ``data_dir``, loaded and preprocessed as a job would."""
    frame = load_features(bench_context("bench"), PipelineSettings(data_dir=data_dir).features_root)
    return preprocess(frame, config)
