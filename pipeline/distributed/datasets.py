"""Ray Datasets of a job's training rows, made without Ray Data's metadata tasks.

``ray.data.from_arrow_refs`` reads each block's metadata in a task that Ray Data schedules
outside any placement group (on purpose: its tasks never inherit one). A data-parallel
job's reservation holds every CPU its workers use, often the whole cluster, so those
tasks would wait for a CPU that never frees. Here each block's metadata is taken where
the block is made (``metadata_of``: by a task in the reservation, or by the coordinator
as it puts each block) and the dataset is assembled from refs and metadata as
``from_arrow_refs`` assembles it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data
from ray.data.block import BlockMetadataWithSchema

from pipeline.features.partitions import PartitionedData, block
from pipeline.features.preprocess import PreparedData, PreparedFeatures, Split

#: Rows per Ray Data block: the unit a worker's shard is made of.
BLOCK_ROWS = 50_000


def metadata_of(table: pa.Table) -> BlockMetadataWithSchema:
    """A block's metadata as Ray Data reads it."""
    return BlockMetadataWithSchema.from_block(table)


def dataset_of(
    refs: Sequence[Any], metadata: Sequence[BlockMetadataWithSchema]
) -> ray.data.Dataset:
    """The dataset of Arrow blocks already in the object store, whose metadata is known:
    what ``ray.data.from_arrow_refs`` makes, without its tasks."""
    from ray.data._internal.logical.interfaces import LogicalPlan
    from ray.data._internal.logical.operators.from_operators import FromArrow
    from ray.data._internal.stats import DatasetStats
    from ray.data.context import DataContext
    from ray.data.dataset import MaterializedDataset

    stats = DatasetStats(metadata={"FromArrow": list(metadata)}, parent=None)
    context = DataContext.get_current().copy()
    plan = LogicalPlan(FromArrow(list(refs), list(metadata)), context)
    return MaterializedDataset(plan, context, stats)


def training_rows(data: PreparedFeatures, min_blocks: int) -> ray.data.Dataset:
    """The training rows as a Ray Dataset: a partitioned job's blocks as they are (one
    per bucket), else the training part in ``min_blocks`` blocks or more."""
    if isinstance(data, PartitionedData):
        return dataset_of(data.train.blocks, data.train.metadata)
    assert isinstance(data, PreparedData)
    return to_dataset(data.train, min_blocks)


def to_dataset(split: Split, min_blocks: int) -> ray.data.Dataset:
    """A Ray Dataset of a split's features (one column each, by position), target and row
    number, put in the object store block by block (so no second copy of the matrix is
    ever whole in this process). Block ``b`` of ``n`` holds rows ``b, b + n, ...``: every
    shard then spans the whole period, and LightGBM's bins, which each worker finds for
    some features from its own rows, fit all of it."""
    count = max(min_blocks, math.ceil(len(split.y) / BLOCK_ROWS))
    refs: list[Any] = []
    metadata: list[BlockMetadataWithSchema] = []
    for first in range(count):
        rows = np.arange(first, len(split.y), count)
        table = block(split.X[rows], split.y[rows], rows)
        metadata.append(metadata_of(table))
        refs.append(ray.put(table))
    return dataset_of(refs, metadata)
