"""The final refit on every row: the registered model has seen its test part, its test
metrics are the scored model's, and what counts as out of sample moves past its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.preprocess import preprocess
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import ModelArtifact, load_artifact, out_of_sample_from
from pipeline.settings import PipelineSettings
from pipeline.stages import Stage
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from pipeline.training.boosters import grown_rounds

SMALL = {"n_estimators": 40, "learning_rate": 0.2}


def config(**extra: object) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "hyperparameters": SMALL,
            **extra,
        }
    )


def trained(store: FeatureStore, root: Path, refit: bool) -> tuple[Location, list[Stage]]:
    context = JobContext(
        job_id=f"job-{refit}",
        tenant_id="tenant-a",
        model_type=ModelType.FORECAST,
        model_name=f"final-{refit}",
        config=config(refit_on_all_rows=refit),
    )
    settings = PipelineSettings(features_dir=str(store.root), artifacts_dir=str(root))
    saved, reports = run_in_process(context, settings)
    return Location(saved.artifact_uri), [r.stage for r in reports]


@pytest.fixture(scope="module")
def models(
    demo_store: FeatureStore, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelArtifact, ModelArtifact, ModelArtifact]:
    """A plain model, the same job refitted on every row, and the latter's scored model."""
    root = tmp_path_factory.mktemp("artifacts")
    plain, stages = trained(demo_store, root, refit=False)
    assert Stage.FINAL_REFIT not in stages
    refitted, stages = trained(demo_store, root, refit=True)
    assert stages[-2:] == [Stage.FINAL_REFIT, Stage.REGISTER]
    scored = load_artifact(refitted, scored=True)
    return load_artifact(plain), load_artifact(refitted), scored


def test_the_test_metrics_are_the_scored_models_and_the_boosters_saw_the_test_part(
    demo_store: FeatureStore, models: tuple[ModelArtifact, ModelArtifact, ModelArtifact]
) -> None:
    plain, refitted, scored = models
    assert refitted.metadata["metrics"] == pytest.approx(plain.metadata["metrics"])
    data = preprocess(demo_store.load("forecast_basic"), config())
    test = data.test
    rows = data.scaler.inverse_transform(test.X)  # an artifact scales its rows itself
    unseen = np.abs(plain.predict(rows) - test.y).mean()
    seen = np.abs(refitted.predict(rows) - test.y).mean()
    assert unseen == pytest.approx(plain.metadata["metrics"]["mae"], rel=1e-6)
    assert seen < 0.9 * unseen  # fitted on those rows now
    assert np.allclose(scored.predict(rows), plain.predict(rows))  # kept beside it
    assert out_of_sample_from(scored.metadata) == out_of_sample_from(plain.metadata)
    assert scored.metadata["quantile_calibration"] == plain.metadata["quantile_calibration"]
    grown = [m["rounds"] for m in refitted.metadata["members"]]
    assert all(g >= p["rounds"] for g, p in zip(grown, plain.metadata["members"], strict=True))


def test_out_of_sample_rows_start_after_the_data_it_was_refitted_on(
    models: tuple[ModelArtifact, ModelArtifact, ModelArtifact],
) -> None:
    plain, refitted, _ = models
    lineage = refitted.metadata["lineage"]
    assert out_of_sample_from(plain.metadata) == pd.Timestamp(lineage["test_start"])
    step = refitted.feature_spec.step
    assert out_of_sample_from(refitted.metadata) == pd.Timestamp(lineage["test_end"]) + step
    old = {**plain.metadata, "lineage": {"test_start": lineage["test_start"]}}
    assert out_of_sample_from(old) == pd.Timestamp(lineage["test_start"])


def test_its_served_intervals_count_no_misses_of_rows_it_was_fitted_on(
    demo_store: FeatureStore, models: tuple[ModelArtifact, ModelArtifact, ModelArtifact]
) -> None:
    """On its test rows the plain model's intervals follow their misses, as the scored
    model's do; the refitted model's stay as calibrated: it was fitted on every one."""
    data = preprocess(demo_store.load("forecast_basic"), config())
    test = data.test
    rows = data.scaler.inverse_transform(test.X)
    for artifact, adapts in zip(models, (True, False, True), strict=True):
        point = artifact.predict(rows)
        static = artifact.predict_quantiles(rows, point)
        assert static is not None
        served = artifact.served_quantiles(point, static, test.y, test.timestamps, test.series)
        assert np.allclose(served, static) is not adapts


def test_a_final_refit_trains_in_one_process() -> None:
    assert config(refit_on_all_rows=True).sized_for(10**9, 1, 64).distributed is None
    for other in ({"per_series": True}, {"distributed": {"workers": 2}}):
        with pytest.raises(ValidationError, match="refit_on_all_rows is not supported"):
            config(refit_on_all_rows=True, **other)


def test_with_no_refit_the_final_rounds_grow_from_the_training_part(
    demo_store: FeatureStore, tmp_path: Path
) -> None:
    """With refit 'none' the rounds were found on the training part alone: they grow by
    all rows over those (they had grown over training and validation rows)."""
    hyperparameters = {"n_estimators": 1000, "learning_rate": 0.2}
    artifacts = []
    for final in (False, True):
        context = JobContext(
            job_id=f"job-none-{final}",
            tenant_id="tenant-a",
            model_type=ModelType.FORECAST,
            model_name=f"none-{final}",
            config=config(refit="none", refit_on_all_rows=final, hyperparameters=hyperparameters),
        )
        settings = PipelineSettings(features_dir=str(demo_store.root), artifacts_dir=str(tmp_path))
        saved, _ = run_in_process(context, settings)
        artifacts.append(load_artifact(Location(saved.artifact_uri)))
    data = preprocess(demo_store.load("forecast_basic"), config())
    rows = data.train_rows + len(data.validation.y) + len(data.test.y)
    for found, final in zip(*(a.metadata["members"] for a in artifacts), strict=True):
        expected = grown_rounds(found["rounds"], data.train_rows, rows - data.train_rows, 1000)
        assert final["rounds"] == expected
