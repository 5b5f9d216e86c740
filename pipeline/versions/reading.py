"""Reading an uploaded table (a CSV or Parquet file, or a DataFrame) as DataFrames of at
most ``BATCH_ROWS`` rows, within ``ImportLimits``: a file's columns and its size as read
(decompressed), so that a small upload cannot unpack into an unbounded table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from domain.errors import InvalidFeatureSet, TooLarge
from pipeline.versions.column_types import named_columns

#: Rows read, validated and written at a time.
BATCH_ROWS = 500_000
Source = Path | pd.DataFrame | IO[bytes]


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on one imported file (None: unbounded): its columns, and its size as read,
    the bytes of its decoded batches (Parquet decompressed, CSV parsed)."""

    max_columns: int | None = None
    max_bytes: int | None = None

    def check_columns(self, count: int) -> None:
        """Raises: InvalidFeatureSet: more than ``max_columns``."""
        if self.max_columns is not None and count > self.max_columns:
            raise InvalidFeatureSet(
                "body",
                f"the file has {count} columns, more than the limit of {self.max_columns}",
            )

    def check_size(self, size: int) -> None:
        """Raises: TooLarge: ``size`` bytes (decompressed) exceed ``max_bytes``."""
        if self.max_bytes is not None and size > self.max_bytes:
            raise TooLarge(
                f"the file exceeds the limit of {self.max_bytes // 2**20} MiB once "
                "decompressed (the table as read)"
            )


def read_frames(
    source: Source, limits: ImportLimits, text: str | None = None
) -> Iterator[pd.DataFrame]:
    """The source as DataFrames of at most ``BATCH_ROWS`` rows, within ``limits``; a CSV's
    column ``text`` (the series ids) read as written."""
    if isinstance(source, pd.DataFrame):
        limits.check_columns(len(source.columns))
        for start in range(0, len(source), BATCH_ROWS):
            yield named_columns(source.iloc[start : start + BATCH_ROWS])
        return
    size = 0
    try:
        batches = (
            _parquet_batches(source, limits) if _is_parquet(source) else _csv_batches(source, text)
        )
        for batch in batches:
            limits.check_columns(batch.num_columns)
            size += batch.nbytes
            limits.check_size(size)
            yield named_columns(_decimals_as_floats(batch).to_pandas(ignore_metadata=True))
    except (pa.ArrowException, UnicodeDecodeError, ValueError) as exc:
        raise InvalidFeatureSet("body", f"cannot read the file as CSV or Parquet: {exc}") from exc


def _decimals_as_floats(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Decimal columns (a database's NUMERIC, as Spark and database exports write them) as
    floats: pandas would read them as objects, not numbers."""
    if not any(pa.types.is_decimal(field.type) for field in batch.schema):
        return batch
    arrays = [
        column.cast(pa.float64()) if pa.types.is_decimal(column.type) else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _parquet_batches(source: Path | IO[bytes], limits: ImportLimits) -> Iterator[pa.RecordBatch]:
    """Parquet record batches, once the footer's column count and uncompressed size are
    within ``limits`` (the batches are counted as well: a footer can lie)."""
    parquet = pq.ParquetFile(source)
    metadata = parquet.metadata
    limits.check_columns(metadata.num_columns)
    limits.check_size(
        sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    )
    yield from parquet.iter_batches(batch_size=BATCH_ROWS)


def _is_parquet(source: Path | IO[bytes]) -> bool:
    if isinstance(source, Path):
        with source.open("rb") as file:
            return file.read(4) == b"PAR1"
    position = source.tell()
    magic = source.read(4)
    source.seek(position)
    return magic == b"PAR1"


def _csv_batches(source: Path | IO[bytes], text: str | None = None) -> Iterator[pa.RecordBatch]:
    """CSV record batches, with every integer column read as float (a column whose first
    block holds whole numbers may hold decimals further down) but column ``text``, read as
    written: series ids ``101`` or ``007`` are not numbers."""
    options = pacsv.ReadOptions(block_size=16 * 2**20)
    with pacsv.open_csv(_reopened(source), read_options=options) as reader:
        types: dict[str, pa.DataType] = {
            field.name: pa.float64() for field in reader.schema if pa.types.is_integer(field.type)
        }
    if text is not None:
        types[text] = pa.string()
    convert = pacsv.ConvertOptions(column_types=types)
    with pacsv.open_csv(_reopened(source), read_options=options, convert_options=convert) as reader:
        yield from reader


def _reopened(source: Path | IO[bytes]) -> str | IO[bytes]:
    if isinstance(source, Path):
        return str(source)
    source.seek(0)
    return source
