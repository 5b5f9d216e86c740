"""A forecast's (or a detection's) rows in one Parquet file, sorted by series then time,
in row groups of ``ROW_GROUP_ROWS``: written a chunk at a time, read a page (or a series'
page, or all of it as CSV) at a time, never whole in memory either way."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.storage import Location

#: Rows per CSV chunk streamed.
CSV_BATCH_ROWS = 10_000
#: Rows per row group of a stored forecast: a page reads the groups it falls in, not the file.
ROW_GROUP_ROWS = 65_536


def write_forecast(location: Location, table: pa.Table) -> None:
    """A forecast's (or a detection's) rows, in row groups a page can be read from."""
    location.write_parquet(table, row_group_size=ROW_GROUP_ROWS)


def write_forecast_parts(location: Location, parts: Iterable[pa.Table]) -> int:
    """``write_forecast`` of the parts' rows, in order, written as they come: a forecast of
    millions of rows is never whole in memory. The first part with rows sets the columns'
    types (an empty part's strings have none). Returns the rows written.

    Raises:
        ValueError: no part (a file needs its columns).
    """
    buffered: list[pa.Table] = []
    empty: pa.Table | None = None
    pending = written = 0
    with contextlib.ExitStack() as stack:
        writer: pq.ParquetWriter | None = None
        for part in parts:
            if not part.num_rows:
                empty = part if empty is None else empty
                continue
            if writer is None:
                schema = part.schema
                writer = stack.enter_context(location.parquet_writer(schema))
            buffered.append(part.cast(schema))
            pending += part.num_rows
            if pending >= ROW_GROUP_ROWS:  # whole row groups now, the rest with what comes
                table = pa.concat_tables(buffered)
                whole = pending - pending % ROW_GROUP_ROWS
                writer.write_table(table.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
                buffered, pending, written = [table.slice(whole)], pending - whole, written + whole
        if writer is not None and pending:
            writer.write_table(pa.concat_tables(buffered), row_group_size=ROW_GROUP_ROWS)
    if writer is None:
        if empty is None:
            raise ValueError(f"{location}: no part to write")
        write_forecast(location, empty)
    return written + pending


def forecast_page(
    location: Location, offset: int, limit: int, series: str | None = None
) -> tuple[pd.DataFrame, int]:
    """``limit`` rows from ``offset`` and the row count, of the forecast or of one of its
    ``series`` (its rows are sorted by series). Only the row groups the page falls in are
    read whole; with ``series``, the groups its statistics say hold only it are counted
    from the footer, and the two at its ends from their series column."""
    with location.filesystem.open_input_file(location.path) as file:
        parquet = pq.ParquetFile(file)
        if series is None:
            groups, first_row = _covering(parquet.metadata, offset, limit)
            table = parquet.read_row_groups(groups).slice(offset - first_row, limit)
            total = parquet.metadata.num_rows
        else:
            table, total = _series_page(parquet, series, offset, limit)
    frame: pd.DataFrame = table.to_pandas()
    return frame, total


def _series_page(
    parquet: pq.ParquetFile, series: str, offset: int, limit: int
) -> tuple[pa.Table, int]:
    """``limit`` rows of ``series`` from ``offset``, and its row count."""
    counts = {
        index: _rows_of(parquet, index, series) for index in _holding(parquet.metadata, series)
    }
    total = sum(counts.values())
    wanted: list[int] = []
    start = first_row = 0
    for index, rows in counts.items():
        if rows and start + rows > offset and start < offset + limit:
            if not wanted:
                first_row = start
            wanted.append(index)
        start += rows
    if not wanted:
        empty = parquet.schema_arrow.empty_table()
        return empty, total
    held = parquet.read_row_groups(wanted)
    held = held.filter(pc.equal(held["series"], series))
    return held.slice(offset - first_row, limit), total


def _rows_of(parquet: pq.ParquetFile, index: int, series: str) -> int:
    """How many rows of row group ``index`` are of ``series``: from the footer when its
    statistics say every row is, else from its series column."""
    group = parquet.metadata.row_group(index)
    stats = group.column(parquet.metadata.schema.names.index("series")).statistics
    only = stats is not None and stats.has_min_max and stats.min == stats.max == series
    if only and stats.has_null_count and stats.null_count == 0:
        return int(group.num_rows)
    column = parquet.read_row_group(index, columns=["series"])["series"]
    return int(pc.sum(pc.equal(column, series)).as_py() or 0)


def _covering(metadata: pq.FileMetaData, offset: int, limit: int) -> tuple[list[int], int]:
    """The row groups holding rows ``offset`` to ``offset + limit``, and the first row of
    the first of them."""
    groups: list[int] = []
    start = first_row = 0
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if start + rows > offset and start < offset + limit:
            if not groups:
                first_row = start
            groups.append(index)
        start += rows
    return groups, first_row


def _holding(metadata: pq.FileMetaData, series: str) -> list[int]:
    """The row groups whose ``series`` statistics may hold ``series`` (every one without
    statistics)."""
    column = metadata.schema.names.index("series")
    groups = []
    for index in range(metadata.num_row_groups):
        stats = metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max or stats.min <= series <= stats.max:
            groups.append(index)
    return groups


def forecast_csv(
    location: Location, batch_rows: int = CSV_BATCH_ROWS, series: str | None = None
) -> Iterator[str]:
    """The whole forecast (or one of its ``series``) as CSV: a header, then the rows, a
    batch of rows at a time (with ``series``, of the row groups that may hold it)."""
    with location.filesystem.open_input_file(location.path) as file:
        parquet = pq.ParquetFile(file)
        groups = None if series is None else _holding(parquet.metadata, series)
        header = True
        for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=groups):
            if series is not None:
                batch = batch.filter(pc.equal(batch["series"], series))
            if header or batch.num_rows:
                text = io.StringIO()
                batch.to_pandas().to_csv(text, header=header, index=False)
                header = False
                yield text.getvalue()
        if header:  # no row group may hold the series: the header alone
            yield parquet.schema_arrow.empty_table().to_pandas().to_csv(index=False)
