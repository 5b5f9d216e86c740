"""The preprocess stage of a partitioned job: tasks build, measure and split each part,
one per CPU of the job's bundles at a time."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import ray
from ray.data.block import BlockMetadataWithSchema
from sklearn.preprocessing import StandardScaler

from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.distributed.datasets import metadata_of
from pipeline.distributed.ray_train import sample_fraction
from pipeline.features.partitions import (
    FeaturePlan,
    Moments,
    Part,
    PartitionedData,
    TrainBlocks,
    TrainPart,
    build_part,
    joined,
    merged_scaler,
    rows_per_timestamp,
    split_part,
    train_moments,
)
from pipeline.features.preprocess import Split, SplitBounds, check_fitted_rows, split_bounds
from pipeline.graph.fanout import Starter, fan_out, stop_of
from pipeline.job_callbacks import JobCallbacks
from pipeline.placement import Placement
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore


def _build_task(
    features_root: Location,
    tenant_id: str | None,
    planned: FeaturePlan,
    part: Part,
    config: TrainingConfig,
) -> tuple[pa.Table, pd.Series]:
    return build_part(FeatureStore(features_root, tenant_id), planned, part, config)


def _split_task(
    table: pa.Table,
    bounds: SplitBounds,
    scaler: StandardScaler,
    planned: FeaturePlan,
    fraction: float,
    seed: int,
) -> tuple[pa.Table, Split, Split, TrainPart, BlockMetadataWithSchema]:
    """``split_part``, and its training block's metadata for Ray Data."""
    train, validation, test, part = split_part(table, bounds, scaler, planned, fraction, seed)
    return train, validation, test, part, metadata_of(train)


# Typed Any: each call returns a list of refs, one per returned value.
_remote_build: Any = ray.remote(num_cpus=1, num_returns=2)(_build_task)
_remote_moments = ray.remote(num_cpus=1)(train_moments)
_remote_split: Any = ray.remote(num_cpus=1, num_returns=5)(_split_task)


def partitioned_stage(
    context: JobContext,
    planned: FeaturePlan,
    features_root: Location,
    placement: Placement,
    callbacks: JobCallbacks | None,
) -> PartitionedData:
    """The preprocess stage of a partitioned job: a coordinator (no CPU) whose tasks
    ``features:<job_id>:<part>`` build, measure and split each part's features
    (``pipeline.features.partitions``); the training rows stay in the object store."""
    config, job = context.config, context.job_id
    names = [f"features:{job}:{number}" for number in range(len(planned.parts))]
    bundles, stop = placement.workers(), stop_of(callbacks)
    tables: list[Any] = [None] * len(names)

    def build(number: int, part: Part) -> Starter[pd.Series]:
        def start(options: dict[str, Any]) -> Any:
            tables[number], count = _remote_build.options(name=names[number], **options).remote(
                features_root, context.tenant_id, planned, part, config
            )
            return count

        return start

    counts = fan_out(
        [build(n, part) for n, part in enumerate(planned.parts)], bundles, "feature building", stop
    )
    bounds = split_bounds(rows_per_timestamp(counts), config)

    def measure(number: int) -> Starter[Moments]:
        return lambda options: _remote_moments.options(name=names[number], **options).remote(
            tables[number], bounds, planned
        )

    moments = fan_out([measure(n) for n in range(len(names))], bundles, "feature scaling", stop)
    scaler = merged_scaler(moments, planned.feature_names)
    fraction = sample_fraction(sum(m.rows for m in moments))
    splits: list[Any] = [None] * len(names)

    def split(number: int) -> Starter[TrainPart]:
        def start(options: dict[str, Any]) -> Any:
            splits[number] = _remote_split.options(name=names[number], **options).remote(
                tables[number], bounds, scaler, planned, fraction, number
            )
            tables[number] = None  # each part's matrix is freed once it is split
            return splits[number][3]

        return start

    parts = fan_out([split(n) for n in range(len(names))], bundles, "feature splitting", stop)
    validation = joined(ray.get([v for _, v, _, _, _ in splits]))
    check_fitted_rows(sum(part.rows for part in parts), int(validation.normal.sum()))
    test = joined(ray.get([t for _, _, t, _, _ in splits]))
    metadata = ray.get([m for *_, m in splits])
    return PartitionedData(
        train=TrainBlocks([block for block, *_ in splits], parts, metadata),
        validation=validation,
        test=test,
        feature_names=planned.feature_names,
        scaler=scaler,
        spec=planned.spec,
        feature_schema=planned.schema,
    )
