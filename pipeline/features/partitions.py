"""Parallel feature building: a distributed job's features built part by part (series
buckets of the store), so no process ever holds the whole set.

The load stage reads only the set's key columns (``feature_plan``) and cuts the set into
parts: a series bucket of the store, or a group of its series when the bucket holds more
than ``PART_ROWS`` rows, so a part's size does not grow with the set. The preprocess stage
then runs three waves of one-CPU tasks over the parts (``pipeline.graph``), each holding
one part:

1. ``build_part``: the part's rows become its feature matrix (unscaled), an Arrow table
   left in the object store, and a count of usable rows per timestamp, from which the
   coordinator splits the job by time (``split_bounds``) as one process would;
2. ``train_moments``: the part's training rows' moments per feature, merged into the
   scaler one process would fit on all of them (``Moments``);
3. ``split_part``: the part's training rows, scaled, as one block for Ray Train (with a
   sample of them to bin on), and its scaled validation and test parts.

The coordinator keeps the validation and test parts (every Ray Train worker reads the
validation part, evaluation the test part) and what the training rows' blocks say of
themselves (``TrainBlocks``): the training rows stay in the object store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.preprocessing import StandardScaler

from domain.errors import PipelineError
from pipeline.config import TrainingConfig
from pipeline.features.build import (
    FeatureMatrix,
    FeatureSpec,
    build_features,
    feature_names,
    spec_for,
)
from pipeline.features.preprocess import (
    PreparedFeatures,
    Split,
    SplitBounds,
    keep_categories,
    split_rows,
)
from pipeline.scoring.series import naive_scales
from pipeline.store.feature_store import FeatureSetSchema, FeatureStore
from pipeline.store.windows import LabelledWindow, with_window_labels
from pipeline.summaries import LoadSummary

#: A part holds one bucket, or this many rows or fewer of its series (a series is never
#: cut: its features read its own history).
PART_ROWS = 2_000_000
#: A training block's columns besides the features (``f0``, ``f1``, ... by position).
LABEL = "label"
ROW = "row"
_TARGET, _TIMESTAMP, _SERIES, _LABELS, _NAIVE = (
    "_target",
    "_timestamp",
    "_series",
    "_labels",
    "_naive",
)


@dataclass(frozen=True)
class Part:
    """Rows one task builds features of: a series bucket of the store (``None`` for a set
    stored before partitions), or the listed ``series`` of it."""

    bucket: int | None
    series: tuple[str, ...] | None
    rows: int


@dataclass(frozen=True)
class FeaturePlan:
    """What a partitioned preprocess works from: the pinned version of the set, the
    features every part builds, and the parts."""

    schema: FeatureSetSchema
    spec: FeatureSpec
    parts: tuple[Part, ...]
    rows: int
    #: The set's labelled anomaly windows, for an anomaly job (each part labels its rows).
    windows: tuple[LabelledWindow, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.spec, self.schema.covariates)

    def summary(self) -> LoadSummary:
        return LoadSummary(
            rows=self.rows, feature_set=self.schema.name, version=self.schema.pinned_version
        )


def feature_plan(
    store: FeatureStore, config: TrainingConfig, part_rows: int = PART_ROWS
) -> FeaturePlan:
    """Pin the set's current version and read its key columns (in batches) for the
    features a model of it gets (``pipeline.features.build.spec_for``) and its parts.

    Raises:
        FeatureSetNotFound: no such set.
        PipelineError: no rows in the selected range, or timestamps that do not increase.
    """
    schema = store.schema(config.feature_set)
    version = schema.pinned_version
    keys = store.keys(config.feature_set, config.start_date, config.end_date, version=version)
    if keys.first is None:
        raise PipelineError("no rows with complete features in the selected date range")
    step = schema.step_seconds or store.step_seconds(config.feature_set)
    if step <= 0:
        raise PipelineError("timestamps must increase")
    spec = spec_for(step, keys.first, keys.last, keys.series, config)
    parts = [
        part
        for bucket in keys.buckets
        for part in parts_of(bucket, keys.rows_by_bucket[bucket], part_rows)
    ]
    return FeaturePlan(schema, spec, tuple(parts), keys.rows)


def parts_of(bucket: int | None, rows: dict[str | None, int], part_rows: int) -> list[Part]:
    """A bucket as one part, or its series in groups of at most ``part_rows`` rows (a
    series of more rows is a part alone)."""
    total = sum(rows.values())
    if total <= part_rows or None in rows:
        return [Part(bucket, None, total)]
    parts: list[Part] = []
    group: list[str] = []
    size = 0
    for name in sorted(n for n in rows if n is not None):
        if group and size + rows[name] > part_rows:
            parts.append(Part(bucket, tuple(group), size))
            group, size = [], 0
        group.append(name)
        size += rows[name]
    parts.append(Part(bucket, tuple(group), size))
    return parts


def build_part(
    store: FeatureStore, plan: FeaturePlan, part: Part, config: TrainingConfig
) -> tuple[pa.Table, pd.Series]:
    """One part's feature matrix as a table, and its usable rows per timestamp."""
    schema = plan.schema
    frame = store.load(
        schema.name,
        config.end_date,
        version=schema.pinned_version,
        bucket=part.bucket,
        series=part.series,
    )
    frame = with_window_labels(frame, plan.windows)
    matrix = build_features(frame, plan.spec, config.start_date, config.end_date)
    columns: dict[str, Any] = {
        name: matrix.features[name].to_numpy() for name in plan.feature_names
    }
    columns[_TARGET] = matrix.target
    columns[_TIMESTAMP] = matrix.timestamps.to_numpy(dtype="datetime64[ns]")
    if matrix.series is not None:
        columns[_SERIES] = matrix.series.to_numpy(dtype=str)
    if matrix.labels is not None:
        columns[_LABELS] = matrix.labels
    columns[_NAIVE] = matrix.seasonal_naive
    return pa.table(columns), matrix.timestamps.value_counts()


def rows_per_timestamp(counts: Sequence[pd.Series]) -> pd.Series:
    """Every part's usable rows per timestamp, summed."""
    summed: pd.Series = pd.concat(counts).groupby(level=0).sum()
    return summed


@dataclass(frozen=True)
class Moments:
    """Per feature, over the non-missing values of ``rows`` rows: their count, mean and
    sum of squared deviations; two merge exactly (Chan, Golub and LeVeque's update)."""

    rows: int
    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray) -> Moments:
        present = ~np.isnan(X)
        count = present.sum(axis=0)
        total = np.where(present, X, 0.0).sum(axis=0)
        mean = np.divide(total, count, out=np.zeros(X.shape[1]), where=count > 0)
        m2 = np.where(present, (X - mean) ** 2, 0.0).sum(axis=0)
        return cls(len(X), count, mean, m2)

    def merged(self, other: Moments) -> Moments:
        count = self.count + other.count
        delta = other.mean - self.mean
        share = np.divide(other.count, count, out=np.zeros(len(count)), where=count > 0)
        mean = self.mean + delta * share
        m2 = self.m2 + other.m2 + delta**2 * self.count * share
        return Moments(self.rows + other.rows, count, mean, m2)

    def scaler(self, names: list[str]) -> StandardScaler:
        """The StandardScaler ``fit`` gives on the rows these moments are of (a constant
        feature keeps its scale of 1, as there), categories passed through."""
        var = np.divide(self.m2, self.count, out=np.zeros(len(self.count)), where=self.count > 0)
        eps = np.finfo(np.float64).eps
        constant = var <= self.count * eps * var + (self.count * self.mean * eps) ** 2
        scaler = StandardScaler()
        scaler.mean_ = self.mean
        scaler.var_ = var
        scaler.scale_ = np.where(constant, 1.0, np.sqrt(var))
        scaler.n_samples_seen_ = self.count
        scaler.n_features_in_ = len(names)
        keep_categories(scaler, names)
        return scaler


def train_moments(table: pa.Table, bounds: SplitBounds, plan: FeaturePlan) -> Moments:
    """The moments of one part's training rows."""
    matrix = _matrix(table, plan)
    train = bounds.masks(matrix.timestamps, matrix.labels)["train"]
    return Moments.of(matrix.features[train].to_numpy(dtype="float64"))


def merged_scaler(moments: Sequence[Moments], names: list[str]) -> StandardScaler:
    """The scaler of every part's training rows, from each part's moments."""
    total = moments[0]
    for more in moments[1:]:
        total = total.merged(more)
    return total.scaler(names)


@dataclass(frozen=True)
class TrainPart:
    """What one part's training block says of itself."""

    rows: int
    start: np.datetime64 | None
    end: np.datetime64 | None
    #: The seasonal-naive absolute errors' sum and count (where the forecast exists).
    naive_error: float
    naive_count: int
    naive_scales: pd.Series | None
    #: A uniform sample of the scaled training rows, for LightGBM's bins.
    sample: np.ndarray


def split_part(
    table: pa.Table,
    bounds: SplitBounds,
    scaler: StandardScaler,
    plan: FeaturePlan,
    sample_fraction: float,
    seed: int,
) -> tuple[pa.Table, Split, Split, TrainPart]:
    """One part's scaled training block, validation part, test part, and what its
    training rows say of themselves (``sample_fraction`` of them drawn, by ``seed``)."""
    matrix = _matrix(table, plan)
    masks = bounds.masks(matrix.timestamps, matrix.labels)
    train = split_rows(matrix, masks["train"], scaler)
    errors = np.abs(train.y - train.seasonal_naive)
    known = np.isfinite(errors)
    drawn = np.random.default_rng(seed).random(len(train.y)) < sample_fraction
    part = TrainPart(
        rows=len(train.y),
        start=train.timestamps.min() if len(train.y) else None,
        end=train.timestamps.max() if len(train.y) else None,
        naive_error=float(errors[known].sum()),
        naive_count=int(known.sum()),
        naive_scales=(
            naive_scales(train.series, train.y, train.seasonal_naive)
            if train.series is not None
            else None
        ),
        sample=train.X[drawn],
    )
    validation = split_rows(matrix, masks["validation"], scaler)
    test = split_rows(matrix, masks["test"], scaler)
    return block(train.X, train.y), validation, test, part


def block(X: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None) -> pa.Table:
    """Rows as Ray Train reads them: one column per feature (by position), the target
    and the row numbers."""
    columns = {f"f{i}": X[:, i] for i in range(X.shape[1])}
    numbers = np.arange(len(y)) if rows is None else rows
    return pa.table({**columns, LABEL: y, ROW: numbers})


def joined(splits: Sequence[Split]) -> Split:
    """Buckets' parts as one, ordered by time then series as one process orders them."""
    timestamps = np.concatenate([s.timestamps for s in splits])
    series = _concatenated([s.series for s in splits])
    order = (
        np.lexsort((series, timestamps))
        if series is not None
        else np.argsort(timestamps, kind="stable")
    )
    labels = _concatenated([s.labels for s in splits])
    return Split(
        X=np.vstack([s.X for s in splits])[order],
        y=np.concatenate([s.y for s in splits])[order],
        timestamps=timestamps[order],
        series=series[order] if series is not None else None,
        labels=labels[order] if labels is not None else None,
        seasonal_naive=np.concatenate([s.seasonal_naive for s in splits])[order],
    )


@dataclass(frozen=True)
class TrainBlocks:
    """A job's training rows as blocks in the object store (one per part), and what
    they say of themselves."""

    blocks: list[Any]  # ObjectRef[pa.Table]
    parts: list[TrainPart]
    #: Each block's Ray Data metadata (``ray.data.block.BlockMetadataWithSchema``),
    #: taken where the block was made (``pipeline.distributed.datasets``).
    metadata: list[Any]

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)

    @property
    def sample(self) -> np.ndarray:
        return np.vstack([part.sample for part in self.parts])


@dataclass(frozen=True)
class PartitionedData(PreparedFeatures):
    """A job's data whose training rows stay in the object store (``TrainBlocks``)."""

    train: TrainBlocks

    @property
    def train_rows(self) -> int:
        return self.train.rows

    def train_period(self) -> tuple[np.datetime64, np.datetime64]:
        starts = [p.start for p in self.train.parts if p.start is not None]
        ends = [p.end for p in self.train.parts if p.end is not None]
        return min(starts), max(ends)

    def naive_scale(self) -> float:
        count = sum(part.naive_count for part in self.train.parts)
        error = sum(part.naive_error for part in self.train.parts)
        return error / count if count else float("nan")

    def naive_scales(self) -> pd.Series | None:
        scales = [p.naive_scales for p in self.train.parts if p.naive_scales is not None]
        return pd.concat(scales).sort_index() if scales else None


def _matrix(table: pa.Table, plan: FeaturePlan) -> FeatureMatrix:
    """A part's feature table as the matrix ``build_part`` made it from."""
    columns = set(table.column_names)
    return FeatureMatrix(
        features=table.select(plan.feature_names).to_pandas(),
        target=table[_TARGET].to_numpy(),
        timestamps=pd.Series(pd.to_datetime(table[_TIMESTAMP].to_numpy(), utc=True)),
        series=pd.Series(table[_SERIES].to_numpy(zero_copy_only=False))
        if _SERIES in columns
        else None,
        labels=table[_LABELS].to_numpy() if _LABELS in columns else None,
        seasonal_naive=table[_NAIVE].to_numpy(),
        season=plan.spec.season,
    )


def _concatenated(arrays: Sequence[np.ndarray | None]) -> np.ndarray | None:
    present = [a for a in arrays if a is not None]
    return np.concatenate(present) if present else None
