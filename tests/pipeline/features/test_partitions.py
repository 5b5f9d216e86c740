"""Features built per series bucket: the same validation and test parts, scaler, split and
training facts as one process builds from the whole set, and on the session's Ray the
same through the preprocess stage's tasks, feeding Ray Train."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.preprocessing import StandardScaler

from domain.errors import PipelineError
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.distributed.datasets import metadata_of
from pipeline.distributed.ray_train import bin_samples, sample_fraction, train_distributed
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.build import build_features, default_spec
from pipeline.features.load import load_features, plan_features
from pipeline.features.partitions import (
    FeaturePlan,
    Moments,
    PartitionedData,
    TrainBlocks,
    build_part,
    feature_plan,
    joined,
    merged_scaler,
    rows_per_timestamp,
    split_part,
    train_moments,
)
from pipeline.features.preprocess import PreparedData, Split, preprocess, split_bounds
from pipeline.graph.partitioned import partitioned_stage
from pipeline.placement import Placement
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.store.windows import LabelledWindow
from pipeline.training.train import train
from tests.pipeline.conftest import meters_store

#: More series than the store has buckets, so some buckets hold several.
SERIES = 20


def config(**fields: Any) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "feature_set": "meters",
            "target_variable": "load_kw",
            "distributed": {"workers": 2},
            "hyperparameters": {"n_estimators": 60},
            **fields,
        }
    )


def meters() -> pd.DataFrame:
    """Meters of different lengths and levels, with missing readings and missing rows."""
    frames = []
    for index in range(SERIES):
        meter = load_series(seed=70 + index, hours=24 * (40 + 3 * (index % 10)))
        meter["load_kw"] *= 1 + index % 7
        meter.loc[meter.index % 97 == index, "load_kw"] = np.nan
        meter = meter.drop(index=meter.index[meter.index % 211 == 5])
        frames.append(meter.assign(meter=f"meter-{index}"))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return meters_store(tmp_path_factory, meters())


@pytest.fixture(scope="module")
def whole(store: FeatureStore) -> PreparedData:
    return preprocess(store.load("meters"), config())


def in_process(store: FeatureStore, planned: FeaturePlan, cfg: TrainingConfig) -> PartitionedData:
    """The preprocess stage's three waves, one bucket after another in this process."""
    built = [build_part(store, planned, part, cfg) for part in planned.parts]
    bounds = split_bounds(rows_per_timestamp([counts for _, counts in built]), cfg)
    moments = [train_moments(table, bounds, planned) for table, _ in built]
    scaler = merged_scaler(moments, planned.feature_names)
    fraction = sample_fraction(sum(m.rows for m in moments))
    splits = [
        split_part(table, bounds, scaler, planned, fraction, seed)
        for seed, (table, _) in enumerate(built)
    ]
    return PartitionedData(
        train=TrainBlocks(
            [block for block, *_ in splits],
            [part for *_, part in splits],
            [metadata_of(block) for block, *_ in splits],
        ),
        validation=joined([validation for _, validation, _, _ in splits]),
        test=joined([test for _, _, test, _ in splits]),
        feature_names=planned.feature_names,
        scaler=scaler,
        spec=planned.spec,
        feature_schema=planned.schema,
    )


def assert_same_split(ours: Split, theirs: Split) -> None:
    np.testing.assert_allclose(ours.X, theirs.X, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(ours.y, theirs.y)
    np.testing.assert_array_equal(ours.timestamps, theirs.timestamps)
    assert ours.series is not None
    assert theirs.series is not None
    np.testing.assert_array_equal(ours.series, theirs.series)
    np.testing.assert_array_equal(ours.seasonal_naive, theirs.seasonal_naive)


def assert_same_data(ours: PartitionedData, whole: PreparedData) -> None:
    assert ours.feature_names == whole.feature_names
    assert ours.spec == whole.spec
    np.testing.assert_allclose(ours.scaler.mean_, whole.scaler.mean_, rtol=1e-9)
    np.testing.assert_allclose(ours.scaler.scale_, whole.scaler.scale_, rtol=1e-9)
    assert_same_split(ours.validation, whole.validation)
    assert_same_split(ours.test, whole.test)
    assert ours.train_rows == whole.train_rows
    assert ours.train_period() == whole.train_period()
    assert ours.naive_scale() == pytest.approx(whole.naive_scale(), rel=1e-12)
    ours_scales, whole_scales = ours.naive_scales(), whole.naive_scales()
    assert ours_scales is not None
    assert whole_scales is not None
    pd.testing.assert_series_equal(ours_scales, whole_scales, check_names=False, rtol=1e-12)


def test_the_plan_reads_the_features_one_process_would_build(
    store: FeatureStore, whole: PreparedData
) -> None:
    planned = feature_plan(store, config())
    assert planned.spec == default_spec(store.load("meters"), config())
    assert planned.feature_names == whole.feature_names
    assert planned.rows == len(meters())
    assert len(planned.parts) > 2
    assert all(part.series is None for part in planned.parts)  # one part per bucket
    assert sum(part.rows for part in planned.parts) == planned.rows
    assert planned.summary().version == store.schema("meters").version


def test_bucket_by_bucket_builds_what_one_process_builds(
    store: FeatureStore, whole: PreparedData
) -> None:
    cfg = config()
    partitioned = in_process(store, feature_plan(store, cfg), cfg)
    assert_same_data(partitioned, whole)
    blocks: list[pa.Table] = partitioned.train.blocks
    assert sum(b.num_rows for b in blocks) == whole.train_rows
    stacked = np.column_stack(
        [
            np.concatenate([b[f"f{i}"].to_numpy() for b in blocks])
            for i in range(whole.train.X.shape[1])
        ]
    )
    order = np.lexsort(stacked.T[::-1])
    expected = whole.train.X[np.lexsort(whole.train.X.T[::-1])]
    np.testing.assert_allclose(stacked[order], expected, rtol=1e-9, atol=1e-9)


def test_large_buckets_are_cut_into_groups_of_series(
    store: FeatureStore, whole: PreparedData
) -> None:
    cfg = config()
    planned = feature_plan(store, cfg, part_rows=1500)
    buckets = {part.bucket for part in planned.parts}
    assert len(planned.parts) > len(buckets)
    named = [name for part in planned.parts for name in part.series or ()]
    assert sorted(named) == sorted(f"meter-{i}" for i in range(SERIES))  # each series once
    assert_same_data(in_process(store, planned, cfg), whole)


def test_a_date_range_is_split_as_one_process_splits_it(store: FeatureStore) -> None:
    cfg = config(start_date="2024-01-20T00:00:00Z", end_date="2024-02-25T00:00:00Z")
    partitioned = in_process(store, feature_plan(store, cfg), cfg)
    assert_same_data(partitioned, preprocess(store.load("meters", cfg.end_date), cfg))


def test_a_range_without_rows_fails_as_one_process_fails(store: FeatureStore) -> None:
    cfg = config(start_date="2030-01-01T00:00:00Z")
    with pytest.raises(PipelineError, match="no rows"):
        feature_plan(store, cfg)
    with pytest.raises(PipelineError, match="no rows"):
        preprocess(store.load("meters"), cfg)


def test_merged_moments_give_the_scaler_fitted_on_all_rows() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(5.0, 2.0, size=(1000, 4))
    X[:, 2] = 7.0  # constant: scale 1
    X[rng.random(1000) < 0.1, 1] = np.nan
    parts = np.array_split(X, [100, 101, 640])
    scaler = merged_scaler([Moments.of(part) for part in parts], ["a", "b", "c", "d"])
    fitted = StandardScaler().fit(X)
    np.testing.assert_allclose(scaler.mean_, fitted.mean_, rtol=1e-12)
    np.testing.assert_allclose(scaler.var_, fitted.var_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scaler.scale_, fitted.scale_, rtol=1e-9)
    np.testing.assert_allclose(scaler.transform(X), fitted.transform(X), rtol=1e-9, atol=1e-9)


def test_the_bin_samples_draw_from_every_bucket(store: FeatureStore) -> None:
    cfg = config()
    partitioned = in_process(store, feature_plan(store, cfg), cfg)
    fitting, refitting = bin_samples(partitioned)
    assert len(fitting) == partitioned.train_rows  # fewer than LightGBM's sample: all
    assert len(refitting) == partitioned.train_rows + len(partitioned.validation.y)


@pytest.mark.slow  # three waves of feature tasks, then Ray Train
@pytest.mark.usefixtures("ray_cluster")
def test_the_stage_builds_the_same_data_on_ray_and_trains_as_well_as_one_process(
    store: FeatureStore, whole: PreparedData
) -> None:
    cfg = config()
    context = JobContext("job-partitions", "tenant", ModelType.FORECAST, "meters", cfg)
    plan = feature_plan(store, cfg)
    partitioned = partitioned_stage(context, plan, store.root, Placement.anywhere(), None)
    assert_same_data(partitioned, whole)
    distributed = train_distributed(partitioned, cfg)
    single = train(whole, cfg, num_threads=1)
    ours = evaluate(distributed, partitioned, ModelType.FORECAST, cfg).metrics["mae"]
    theirs = evaluate(single, whole, ModelType.FORECAST, cfg).metrics["mae"]
    assert ours <= theirs * 1.02, (ours, theirs)


def test_an_anomaly_jobs_parts_are_labelled_by_the_sets_windows(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """As one process labels them (``load_features``): a distributed anomaly job had
    trained and been scored as if no window had been uploaded."""
    labelled = meters_store(tmp_path_factory, meters())
    start = pd.Timestamp("2024-01-20T00:00:00Z")
    windows = [
        LabelledWindow(start, start + pd.Timedelta(hours=5), "meter-3"),
        LabelledWindow(start + pd.Timedelta(days=3), start + pd.Timedelta(days=3, hours=2), None),
    ]
    labelled.put_windows("meters", windows)
    cfg = config(horizon=1)
    context = JobContext("job-anomaly", "tenant", ModelType.ANOMALY, "meters", cfg)
    planned = plan_features(context, labelled.root)
    tables = [build_part(labelled, planned, part, cfg)[0] for part in planned.parts]
    flagged = sum(int(pa.compute.sum(table["_labels"]).as_py()) for table in tables)
    one_process = build_features(load_features(context, labelled.root), planned.spec)
    assert one_process.labels is not None
    assert flagged == int(one_process.labels.sum()) > 0
