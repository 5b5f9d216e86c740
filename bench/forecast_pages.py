"""What a page of a large stored detection costs to read.

A detection of 100 five-minute series over a year is one Parquet file of 10.5M rows (by
series, then time), which the API pages 1,000 rows at a time and the console reads 20
pages of. This writes such a file as the service wrote it before (one row group per
million rows, pyarrow's default) and as it writes it now (``ROW_GROUP_ROWS``), then times,
side by side in one run (medians of ``--repeats``):

- ``whole file``: the page reader before: the file read whole, then sliced;
- ``row groups``: ``forecast_page`` on the file written as before (the groups a page falls
  in);
- ``now``: ``forecast_page`` on the file written as now;

for the first, a middle and the last page of every row, and a middle page of one series.

    .venv/bin/python -m bench.forecast_pages [--series 100] [--days 365] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.forecast_files import forecast_page, write_forecast
from pipeline.storage import Location

PAGE = 1_000
STEPS_PER_DAY = 288
#: One page read: its rows and the row count.
Read = Callable[[], tuple[pd.DataFrame, int]]


def detection_rows(series: int, days: int) -> pa.Table:
    """A detection's columns for ``series`` five-minute series of ``days`` days."""
    rng = np.random.default_rng(3)
    steps = days * STEPS_PER_DAY
    rows = series * steps
    stamps = pd.date_range("2024-01-01", periods=steps, freq="5min", tz="UTC")
    actual = rng.normal(100, 10, rows)
    score = np.abs(rng.normal(0, 1, rows))
    return pa.table(
        {
            "series": np.repeat([f"meter-{k:04d}" for k in range(series)], steps),
            "timestamp": np.tile(stamps, series),
            "actual": actual,
            "predicted": actual + rng.normal(0, 3, rows),
            "anomaly_score": score,
            "anomaly": score > 3.5,
            "label": np.zeros(rows, dtype=bool),
        }
    )


def whole_file(location: Location, offset: int, limit: int) -> tuple[pd.DataFrame, int]:
    """The page reader before: every row read, then the page sliced off."""
    with location.filesystem.open_input_file(location.path) as file:
        parquet = pq.ParquetFile(file)
        table = parquet.read().slice(offset, limit)
        return table.to_pandas(), parquet.metadata.num_rows


def timed(read: Read, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        frame, _ = read()
        seconds.append(time.perf_counter() - started)
        assert len(frame) == PAGE
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    table = detection_rows(args.series, args.days)
    rows = table.num_rows
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as root:
        before = Location(str(Path(root) / "before.parquet"))
        before.write_parquet(table)
        now = Location(str(Path(root) / "now.parquet"))
        write_forecast(now, table)
        groups = [pq.ParquetFile(x.path).metadata.num_row_groups for x in (before, now)]
        print(f"{rows:,} rows; row groups: before {groups[0]}, now {groups[1]}")
        middle_series = f"meter-{args.series // 2:04d}"
        pages = {
            "first page": (0, None),
            "middle page": (rows // 2, None),
            "last page": (rows - PAGE, None),
            f"a middle page of {middle_series}": (args.days * STEPS_PER_DAY // 2, middle_series),
        }
        print(f"{'page of 1,000 rows':<34} {'whole file':>11} {'row groups':>11} {'now':>9}")
        for name, (offset, series) in pages.items():
            old = timed(_whole_file_page(before, offset, series), args.repeats)
            grouped = timed(_page(before, offset, series), args.repeats)
            current = timed(_page(now, offset, series), args.repeats)
            print(
                f"{name:<34} {old:10.3f}s {grouped:10.3f}s {current:8.3f}s  "
                f"(now / whole file {current / old:.3f})",
                flush=True,
            )


def _page(location: Location, offset: int, series: str | None) -> Read:
    return lambda: forecast_page(location, offset, PAGE, series)


def _whole_file_page(location: Location, offset: int, series: str | None) -> Read:
    """A page as the whole-file reader gave it: everything read, then sliced (or
    filtered to one series, then sliced)."""

    def read() -> tuple[pd.DataFrame, int]:
        if series is None:
            return whole_file(location, offset, PAGE)
        frame, _ = whole_file(location, 0, 1 << 62)
        mine = frame[frame["series"] == series]
        return mine.iloc[offset : offset + PAGE], len(mine)

    return read


if __name__ == "__main__":
    main()
