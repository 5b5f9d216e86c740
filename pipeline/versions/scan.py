"""Reading a set's Parquet dataset: the filter for the rows a load wants (skipping whole
year partitions), and a set's keys (rows per bucket and series, time span) from the key
columns alone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.versions.importing import BUCKET_COLUMN, YEAR_COLUMN
from pipeline.versions.schema import FeatureSetSchema, SetKeys


def row_filter(
    schema: FeatureSetSchema,
    dataset: ds.Dataset,
    start: datetime | None,
    end: datetime | None,
    series: Sequence[str] | None,
    bucket: int | None,
) -> ds.Expression | None:
    """The rows wanted, with the year partition named too so whole years are skipped."""
    stamp = ds.field(schema.timestamp_column)
    partitioned = YEAR_COLUMN in dataset.schema.names
    conditions = []
    if start is not None:
        conditions.append(stamp >= utc(start))
        if partitioned:
            conditions.append(ds.field(YEAR_COLUMN) >= utc(start).year)
    if end is not None:
        conditions.append(stamp < utc(end))
        if partitioned:
            conditions.append(ds.field(YEAR_COLUMN) <= utc(end).year)
    if series is not None and schema.series_column is not None:
        conditions.append(ds.field(schema.series_column).isin(list(series)))
    if bucket is not None and BUCKET_COLUMN in dataset.schema.names:
        conditions.append(ds.field(BUCKET_COLUMN) == bucket)
    if not conditions:
        return None
    condition = conditions[0]
    for more in conditions[1:]:
        condition = condition & more
    return condition


def scan_keys(
    schema: FeatureSetSchema,
    dataset: ds.Dataset,
    start: datetime | None,
    end: datetime | None,
) -> SetKeys:
    """The rows, series, buckets and time span of version ``schema``'s rows (``dataset``)
    before ``end``, read batch by batch from the key columns alone (the span and the
    series count from ``start``: rows before it are history)."""
    partitioned = BUCKET_COLUMN in dataset.schema.names
    series_column, stamp_column = schema.series_column, schema.timestamp_column
    columns = [c for c in (stamp_column, series_column) if c]
    columns += [BUCKET_COLUMN] if partitioned else []
    rows = 0
    counts: dict[int | None, dict[str | None, int]] = {}
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    scanner = dataset.scanner(
        columns=columns, filter=row_filter(schema, dataset, None, end, None, None)
    )
    since: set[str] = set()  # the series with rows from ``start`` on
    for batch in scanner.to_batches():
        rows += batch.num_rows
        count_rows(batch, series_column, partitioned, counts)
        stamps = batch[stamp_column]
        if start is not None:
            recent = pc.greater_equal(stamps, utc(start))
            stamps = stamps.filter(recent)
            if series_column:
                names = batch[series_column].filter(recent).cast(pa.string()).unique()
                since.update(names.to_pylist())
        if len(stamps):
            low, high = (pd.Timestamp(v.as_py()) for v in pc.min_max(stamps).values())
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
    names = {name for per_series in counts.values() for name in per_series}
    if start is not None:
        names &= since
    return SetKeys(
        rows=rows,
        first=first,
        last=last,
        series=tuple(sorted(n for n in names if n is not None)) if series_column else None,
        rows_by_bucket=counts,
    )


def count_rows(
    batch: pa.RecordBatch,
    series_column: str | None,
    partitioned: bool,
    counts: dict[int | None, dict[str | None, int]],
) -> None:
    """Add a batch's rows per (bucket, series) to ``counts``."""
    keys = [BUCKET_COLUMN] if partitioned else []
    table = pa.Table.from_batches([batch])
    if series_column:
        table = table.set_column(
            table.column_names.index(series_column),
            series_column,
            table[series_column].cast(pa.string()),
        )
        keys.append(series_column)
    if not keys:
        counts.setdefault(None, {})[None] = counts.get(None, {}).get(None, 0) + len(table)
        return
    grouped = table.group_by(keys).aggregate([([], "count_all")]).to_pylist()
    for group in grouped:
        bucket = group[BUCKET_COLUMN] if partitioned else None
        name = group[series_column] if series_column else None
        per_series = counts.setdefault(bucket, {})
        per_series[name] = per_series.get(name, 0) + group["count_all"]


def utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
