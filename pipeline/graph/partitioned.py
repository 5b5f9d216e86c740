"""The preprocess stage of a partitioned job: tasks build, measure and split each part."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import ray

from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.partitions import (
    FeaturePlan,
    Part,
    PartitionedData,
    TrainBlocks,
    build_part,
    joined,
    merged_scaler,
    rows_per_timestamp,
    split_part,
    train_moments,
)
from pipeline.features.preprocess import split_bounds
from pipeline.graph.gather import gather, stop_of
from pipeline.job_callbacks import JobCallbacks
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from pipeline.training.distributed import (
    sample_fraction,
)


def _build_task(
    features_root: Location,
    tenant_id: str | None,
    planned: FeaturePlan,
    part: Part,
    config: TrainingConfig,
) -> tuple[pa.Table, pd.Series]:
    return build_part(FeatureStore(features_root, tenant_id), planned, part, config)


# Typed Any: each call returns a list of refs, one per returned value.
_remote_build: Any = ray.remote(num_cpus=1, num_returns=2)(_build_task)
_remote_moments = ray.remote(num_cpus=1)(train_moments)
_remote_split: Any = ray.remote(num_cpus=1, num_returns=4)(split_part)


def partitioned_stage(
    context: JobContext,
    planned: FeaturePlan,
    features_root: Location,
    callbacks: JobCallbacks | None,
) -> PartitionedData:
    """The preprocess stage of a partitioned job: a coordinator (no CPU) whose tasks
    ``features:<job_id>:<part>`` build, measure and split each part's features
    (``pipeline.features.partitions``); the training rows stay in the object store."""
    config, job = context.config, context.job_id
    names = [f"features:{job}:{number}" for number in range(len(planned.parts))]
    built = [
        _remote_build.options(name=name).remote(
            features_root, context.tenant_id, planned, part, config
        )
        for name, part in zip(names, planned.parts, strict=True)
    ]
    tables = [table for table, _ in built]
    stop = stop_of(callbacks)
    counts = gather([count for _, count in built], "feature building", stop)
    bounds = split_bounds(rows_per_timestamp(counts), config)
    moments = gather(
        [
            _remote_moments.options(name=name).remote(table, bounds, planned)
            for name, table in zip(names, tables, strict=True)
        ],
        "feature scaling",
        stop,
    )
    scaler = merged_scaler(moments, planned.feature_names)
    fraction = sample_fraction(sum(m.rows for m in moments))
    splits = [
        _remote_split.options(name=name).remote(table, bounds, scaler, planned, fraction, seed)
        for seed, (name, table) in enumerate(zip(names, tables, strict=True))
    ]
    del tables, built  # each part's matrix is freed once it is split
    parts = gather([part for *_, part in splits], "feature splitting", stop)
    validation = joined(ray.get([v for _, v, _, _ in splits]))
    test = joined(ray.get([t for _, _, t, _ in splits]))
    return PartitionedData(
        train=TrainBlocks([block for block, *_ in splits], parts),
        validation=validation,
        test=test,
        feature_names=planned.feature_names,
        scaler=scaler,
        spec=planned.spec,
        feature_schema=planned.schema,
    )
