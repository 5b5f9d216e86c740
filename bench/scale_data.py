"""Synthetic multi-meter load sets for ``bench/scale.py``: hourly, one year per meter.

Each meter has its own level, a daily and a weekly shape, a temperature response and noise,
so a model has something to learn per meter and in common. The file is written a block of
meters at a time, so a 16M-row set never sits in memory whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HOURS = 365 * 24
#: Meters generated and written at a time.
BLOCK = 100


def meters_file(rows: int, directory: Path) -> Path:
    """A Parquet file of about ``rows`` rows (whole meters of one year each), made once."""
    meters = max(1, round(rows / HOURS))
    path = directory / f"meters-{meters}x{HOURS}.parquet"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".partial")
    writer: pq.ParquetWriter | None = None
    try:
        for first in range(0, meters, BLOCK):
            table = pa.Table.from_pandas(
                meters_block(range(first, min(first + BLOCK, meters))), preserve_index=False
            )
            if writer is None:
                writer = pq.ParquetWriter(staging, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    staging.rename(path)
    return path


def meters_block(meters: range, hours: int = HOURS) -> pd.DataFrame:
    """Hourly load of ``meters`` over ``hours`` from 2024-01-01: a level each, daily and
    weekly shapes, a temperature response and noise (each meter its own seed)."""
    stamps = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC")
    hour = stamps.hour.to_numpy()
    weekday = stamps.dayofweek.to_numpy()
    day = stamps.dayofyear.to_numpy()
    frames = []
    for meter in meters:
        rng = np.random.default_rng(meter)
        temperature = 12 + 10 * np.sin(2 * np.pi * (day - 110) / 365) + rng.normal(0, 2, hours)
        daily = np.sin(2 * np.pi * (hour - 7 - rng.integers(0, 3)) / 24)
        load = rng.uniform(20, 200) * (
            1 + 0.3 * daily + 0.15 * (weekday < 5) + 0.02 * np.abs(temperature - 16)
        ) + rng.normal(0, 3, hours)
        frames.append(
            pd.DataFrame(
                {
                    "meter": f"m{meter:05d}",
                    "timestamp": stamps,
                    "load_kw": load.round(3),
                    "temperature_c": temperature.round(2),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
