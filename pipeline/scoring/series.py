"""Accuracy per series of a multi-series set: which meters the model serves well or badly."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.scoring.intervals import central_intervals

#: Columns a series-metrics table may be sorted by (besides ``series``).
SORTABLE = ("rows", "mae", "rmse", "mase")


def rows_by_series(keys: np.ndarray) -> dict[Any, np.ndarray]:
    """Each series' row positions, in order; series in order of first appearance. One
    pass over the rows (a mask per series had cost series x rows)."""
    keys = np.asarray(keys)
    codes, _ = pd.factorize(keys, use_na_sentinel=False)  # numbered by first appearance
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1) if len(keys) else []
    return {keys[rows[0]]: rows for rows in groups}


def per_series(
    series: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    naive_scale: pd.Series,
    bounds: np.ndarray | None = None,
    quantiles: Sequence[float] = (),
) -> pd.DataFrame:
    """One row per series: test rows, MAE, RMSE, MASE (against that series' in-sample
    seasonal-naive MAE, ``naive_scale``) and the coverage of each central interval."""
    frame = pd.DataFrame({"series": series, "error": actual - predicted})
    intervals = central_intervals(quantiles) if bounds is not None else []
    for low, high, level in intervals:
        assert bounds is not None
        frame[f"coverage_{level}"] = (actual >= bounds[:, low]) & (actual <= bounds[:, high])
    grouped = frame.groupby("series", sort=True)
    table = pd.DataFrame(
        {
            "rows": grouped.size(),
            "mae": grouped["error"].apply(lambda e: float(np.mean(np.abs(e)))),
            "rmse": grouped["error"].apply(lambda e: float(np.sqrt(np.mean(e**2)))),
        }
    )
    scale = naive_scale.reindex(table.index)
    table["mase"] = (table["mae"] / scale.where(scale > 0)).astype(float)
    for _, _, level in intervals:
        table[f"coverage_{level}"] = grouped[f"coverage_{level}"].mean()
    return table.reset_index()


def naive_mae(actual: np.ndarray, naive: np.ndarray) -> float:
    """The seasonal-naive forecast's MAE over rows where it exists (NaN where none does);
    on the rows a model trained on, MASE's denominator."""
    errors = np.abs(actual - naive)
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else math.nan


def naive_scales(series: np.ndarray, actual: np.ndarray, naive: np.ndarray) -> pd.Series:
    """Each series' mean absolute seasonal-naive error over the rows given (training)."""
    errors = pd.Series(np.abs(actual - naive)).groupby(pd.Series(series)).mean()
    return errors.dropna()


def worst(table: pd.DataFrame, count: int = 5) -> pd.DataFrame:
    """The series with the highest MASE (MAE where MASE is unknown)."""
    key = "mase" if table["mase"].notna().any() else "mae"
    return table.sort_values(key, ascending=False, na_position="last").head(count)
