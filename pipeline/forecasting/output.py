"""The file a logged prediction is kept as: the columns of a batch forecast's
(``pipeline.forecast_files``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa


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
