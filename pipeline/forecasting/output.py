"""Reading a finished batch forecast's Parquet file: a page of it, or all of it as CSV."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
import pyarrow.parquet as pq

from pipeline.storage import Location

#: Rows per CSV chunk streamed.
CSV_BATCH_ROWS = 10_000


def forecast_page(location: Location, offset: int, limit: int) -> tuple[pd.DataFrame, int]:
    """``limit`` rows from ``offset`` and the forecast's row count."""
    with location.filesystem.open_input_file(location.path) as file:
        parquet = pq.ParquetFile(file)
        total = parquet.metadata.num_rows
        table = parquet.read().slice(offset, limit)
    frame: pd.DataFrame = table.to_pandas()
    return frame, total


def forecast_csv(location: Location, batch_rows: int = CSV_BATCH_ROWS) -> Iterator[str]:
    """The whole forecast as CSV (a header, then the rows), a batch of rows at a time."""
    with location.filesystem.open_input_file(location.path) as file:
        for index, batch in enumerate(pq.ParquetFile(file).iter_batches(batch_size=batch_rows)):
            text = io.StringIO()
            batch.to_pandas().to_csv(text, header=index == 0, index=False)
            yield text.getvalue()
