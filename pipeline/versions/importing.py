"""Importing a table into the feature store in bounded memory.

A file (CSV or Parquet) or a DataFrame is read in batches of ``BATCH_ROWS``
(``pipeline.versions.reading``); each batch is validated on its own and streamed by
``pyarrow.dataset.write_dataset`` into a Parquet dataset partitioned by series bucket and
year (``part_bucket=3/part_year=2024/``). A second pass reads one partition at a time to
check what a batch cannot see (a timestamp repeated within a series) and to gather the
statistics a schema keeps. No step holds more than a batch or a partition.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from domain.errors import InvalidColumns, InvalidFeatureSet
from pipeline.storage import Location
from pipeline.versions.column_types import (
    anomaly_labels,
    conformed,
    is_feature_column,
    is_number,
)
from pipeline.versions.reading import ImportLimits, Source, read_frames

#: Series are spread over this many buckets (a single-series set uses one).
BUCKETS = 16
#: The partition columns; a table may not have columns of these names.
BUCKET_COLUMN = "part_bucket"
YEAR_COLUMN = "part_year"
PARTITION_COLUMNS = frozenset({BUCKET_COLUMN, YEAR_COLUMN})
PARTITIONING = ds.partitioning(
    pa.schema([(BUCKET_COLUMN, pa.int32()), (YEAR_COLUMN, pa.int32())]), flavor="hive"
)
#: The partitions a write may make: every bucket in every year a timestamp can have
#: (1677-2262); pyarrow's default of 1,024 refused a set of 64 years and 16 buckets.
MAX_PARTITIONS = BUCKETS * 600
#: A column with this name holds anomaly labels (0/1), never a covariate.
LABEL_COLUMN = "is_anomaly"


@dataclass(frozen=True)
class Columns:
    """The roles the uploader gave the table's columns."""

    timestamp: str
    target: str
    series: str | None

    @property
    def keys(self) -> list[str]:
        return [self.series, self.timestamp] if self.series else [self.timestamp]


@dataclass(frozen=True)
class ImportStats:
    """What the second pass learned about an imported table."""

    columns: list[str]
    rows: int
    start: pd.Timestamp
    end: pd.Timestamp
    step_seconds: float | None


def write_partitioned(
    source: Source,
    columns: Columns,
    target: Location,
    limits: ImportLimits | None = None,
    expected: pa.Schema | None = None,
) -> ImportStats:
    """Validate ``source`` batch by batch into a partitioned dataset at ``target``, then
    check it partition by partition (``validated``, ``write_tables``).

    Raises:
        As ``validated``, and InvalidFeatureSet: a timestamp repeats within a series.
        ``target`` may then hold part of the data: the caller deletes it.
    """
    return write_tables(validated(source, columns, limits, expected), columns, target)


def validated(
    source: Source,
    columns: Columns,
    limits: ImportLimits | None = None,
    expected: pa.Schema | None = None,
) -> Iterator[pa.Table]:
    """``source``'s rows, a batch at a time, checked and normalised (``_validated``), all of
    the first batch's types or, with ``expected``, of the set the rows are added to (an
    append: its columns, numbers cast to its types). Yields at least one batch.

    Raises:
        InvalidFeatureSet: the file is not a table, a column is missing or of the wrong
            type, there are no rows, or more columns than ``limits`` allow.
        InvalidColumns: the columns or their types are not ``expected``'s.
        TooLarge: the file, decompressed, exceeds ``limits``.
    """
    # Generators all the way: the consumer pulls one batch at a time.
    frames = read_frames(source, limits or ImportLimits(), columns.series)
    if expected is not None:
        frames = (_with_columns_of(frame, expected) for frame in frames)
    batches = (_validated(frame, columns) for frame in frames)
    first = next(batches, None)
    if first is None:
        raise InvalidFeatureSet("body", "the file has no rows")
    for table in chain([first], batches):
        if expected is not None:
            yield conformed(table, expected)
            continue
        try:
            yield table.cast(first.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidFeatureSet(
                "body", f"a column changes type part-way through the file: {exc}"
            ) from exc


def write_tables(tables: Iterator[pa.Table], columns: Columns, target: Location) -> ImportStats:
    """Stream ``validated`` tables into a partitioned dataset at ``target``, then check it
    partition by partition: no repeated (series, timestamp), and the statistics.

    Raises:
        InvalidFeatureSet: a timestamp repeats within a series, or there are no rows.
    """
    first = next(tables)
    ds.write_dataset(
        (batch for table in chain([first], tables) for batch in table.to_batches()),
        target.path,
        schema=first.schema,
        format="parquet",
        filesystem=target.filesystem,
        partitioning=PARTITIONING,
        basename_template="part-{i}.parquet",
        existing_data_behavior="overwrite_or_ignore",
        max_partitions=MAX_PARTITIONS,
    )
    names = [c for c in first.schema.names if c not in PARTITION_COLUMNS]
    return _checked(target, columns, names)


def _validated(frame: pd.DataFrame, columns: Columns) -> pa.Table:
    """One batch checked and normalised (UTC timestamps, string series, boolean labels),
    with its partition columns added.

    Raises:
        InvalidFeatureSet: naming the field at fault.
    """
    for field, column in (
        ("timestamp_column", columns.timestamp),
        ("target_column", columns.target),
        ("series_column", columns.series),
    ):
        if column is not None and column not in frame.columns:
            raise InvalidFeatureSet(
                field, f"column {column!r} not in the file (columns: {list(frame.columns)})"
            )
        if column == LABEL_COLUMN:
            raise InvalidFeatureSet(field, f"{LABEL_COLUMN!r} names the anomaly labels (0/1)")
    reserved = sorted(PARTITION_COLUMNS & set(frame.columns))
    if reserved:
        raise InvalidFeatureSet("body", f"column names {reserved} are reserved by the store")
    roles = [c for c in (columns.timestamp, columns.target, columns.series) if c is not None]
    if len(set(roles)) < len(roles):
        raise InvalidFeatureSet(
            "series_column" if columns.series in roles[:2] else "target_column",
            "the timestamp, target and series columns must be different columns",
        )
    clashing = sorted(
        str(c) for c in frame.columns if str(c) not in roles and is_feature_column(str(c))
    )
    if clashing:
        raise InvalidFeatureSet(
            "body",
            f"covariate column names {clashing} are the service's own feature names (calendar "
            "features, lag_N, roll_mean_N, roll_std_N, series_id, last_year, or starting "
            "with '_'): rename them",
        )
    data = frame.copy()
    for column in data.columns:  # a batch with no value in a column types it as null
        if column not in (columns.timestamp, columns.series) and data[column].isna().all():
            data[column] = data[column].astype("float64")
    if is_number(data[columns.timestamp]):
        raise InvalidFeatureSet(
            "timestamp_column",
            f"column {columns.timestamp!r} holds numbers, not times: epoch numbers are "
            "ambiguous (seconds? milliseconds?); give times as ISO 8601",
        )
    times = data[columns.timestamp]
    # Text is read as ISO 8601 only: pandas would guess a format per batch from its first
    # value, and read 01/03/2024 as January 3rd in one file and March 1st in another.
    text = not pd.api.types.is_datetime64_any_dtype(times)
    try:
        data[columns.timestamp] = pd.to_datetime(
            times, utc=True, format="ISO8601" if text else None
        )
    except (ValueError, TypeError) as exc:
        raise InvalidFeatureSet(
            "timestamp_column",
            f"column {columns.timestamp!r} does not hold ISO 8601 timestamps "
            f"(2024-03-01T13:00:00Z, 2024-03-01 13:00): {exc}",
        ) from exc
    if data[columns.timestamp].isna().any():
        raise InvalidFeatureSet(
            "timestamp_column", f"column {columns.timestamp!r} has empty values"
        )
    if not is_number(data[columns.target]):
        raise InvalidFeatureSet("target_column", f"target column {columns.target!r} is not numeric")
    special = {columns.timestamp, columns.target, columns.series}
    for column in data.columns:
        if column in special:
            continue
        if not is_number(data[column]) and not pd.api.types.is_bool_dtype(data[column]):
            raise InvalidFeatureSet(
                "body", f"covariate column {column!r} is not numeric; only numeric covariates"
            )
    for column in data.columns:
        if is_number(data[column]) and np.isinf(data[column].to_numpy(dtype=float)).any():
            field = "target_column" if column == columns.target else "body"
            raise InvalidFeatureSet(field, f"column {column!r} holds infinite values")
    if LABEL_COLUMN in data.columns:
        data[LABEL_COLUMN] = anomaly_labels(data[LABEL_COLUMN])
    try:
        stamps = data[columns.timestamp].astype("datetime64[ns, UTC]")
    except (pd.errors.OutOfBoundsDatetime, OverflowError) as exc:
        raise InvalidFeatureSet(
            "timestamp_column",
            f"column {columns.timestamp!r} holds a time outside 1677-2262: {exc}",
        ) from exc
    data[columns.timestamp] = stamps
    if columns.series is not None:
        ids = data[columns.series]
        if ids.isna().any() or (ids.astype(str).str.strip() == "").any():
            raise InvalidFeatureSet(
                "series_column", f"series column {columns.series!r} has empty values"
            )
        data[columns.series] = ids.astype(str)
        data[BUCKET_COLUMN] = _buckets(data[columns.series])
    else:
        data[BUCKET_COLUMN] = np.int32(0)
    data[YEAR_COLUMN] = stamps.dt.year.astype("int32")
    return pa.Table.from_pandas(data, preserve_index=False)


def _with_columns_of(frame: pd.DataFrame, expected: pa.Schema) -> pd.DataFrame:
    """Raises: InvalidColumns: ``frame`` lacks some of the set's columns or has others."""
    wanted = [name for name in expected.names if name not in PARTITION_COLUMNS]
    problems = {c: "missing: the set has this column" for c in wanted if c not in frame.columns}
    problems |= {str(c): "not a column of the set" for c in frame.columns if c not in wanted}
    if problems:
        raise InvalidColumns(problems)
    return frame


def _buckets(series: pd.Series) -> np.ndarray:
    """A stable bucket per series name (the same in every process and version)."""
    codes, names = pd.factorize(series)
    per_name = np.array([zlib.crc32(str(n).encode()) % BUCKETS for n in names], dtype=np.int32)
    return per_name[codes]


def _checked(target: Location, columns: Columns, names: list[str]) -> ImportStats:
    """Read the dataset one partition directory at a time: no repeated (series, time) and
    the set's statistics."""
    dataset = ds.dataset(
        target.path, filesystem=target.filesystem, format="parquet", partitioning=PARTITIONING
    )
    groups: dict[str, list[str]] = {}
    for path in dataset.files:
        groups.setdefault(path.rsplit("/", 1)[0], []).append(path)
    rows, starts, ends, steps = 0, [], [], []
    for files in groups.values():
        keys = (
            ds.dataset(files, filesystem=target.filesystem, format="parquet")
            .to_table(columns=columns.keys)
            .to_pandas()
        )
        repeated = keys.duplicated()
        if repeated.any():
            first = keys[repeated].iloc[0].tolist()
            raise InvalidFeatureSet(
                "timestamp_column", f"timestamp repeated within a series: {first}"
            )
        rows += len(keys)
        stamps = keys[columns.timestamp]
        starts.append(stamps.min())
        ends.append(stamps.max())
        step = typical_step(keys, columns.timestamp, columns.series)
        if step is not None:
            steps.append(step)
    if not rows:
        raise InvalidFeatureSet("body", "the file has no rows")
    return ImportStats(
        columns=names,
        rows=rows,
        start=min(starts),
        end=max(ends),
        step_seconds=float(np.median(steps)) if steps else None,
    )


def typical_step(
    data: pd.DataFrame, timestamp_column: str, series_column: str | None
) -> float | None:
    """The median spacing of consecutive timestamps within a series, in seconds."""
    keys = [series_column, timestamp_column] if series_column else [timestamp_column]
    ordered = data.sort_values(keys)
    stamps = ordered[timestamp_column]
    spacing = stamps.groupby(ordered[series_column]).diff() if series_column else stamps.diff()
    seconds = spacing.dropna().dt.total_seconds()
    return float(seconds.median()) if len(seconds) else None
