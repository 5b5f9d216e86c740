"""A stored forecast's Parquet file: a page of it, all of it as CSV, and the file a
logged prediction is kept as (the columns of a batch forecast's)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
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


def logged_forecast(predictions: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A request's forecasts (the rows without an actual) as a batch forecast stores its
    rows: ``series``, ``timestamp``, ``predicted`` and a ``q<level>`` column per quantile,
    by series then time."""
    rows = [
        {
            "series": p.get("series"),
            "timestamp": pd.Timestamp(p["timestamp"]),
            "predicted": float(p["predicted"]),
            **{f"q{float(q):g}": float(v) for q, v in (p.get("quantiles") or {}).items()},
        }
        for p in predictions
        if p.get("actual") is None
    ]
    frame = pd.DataFrame(rows, columns=None if rows else ["series", "timestamp", "predicted"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame = frame.sort_values(["series", "timestamp"], kind="stable", na_position="first")
    return pa.Table.from_pandas(frame, preserve_index=False)
