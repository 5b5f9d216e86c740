"""A stored forecast scored against the actuals that arrived after it.

A forecast's rows (``series``, ``timestamp``, ``predicted`` and a ``q<level>`` column per
quantile, as batch forecasts and logged predictions store them) are joined to the
actuals on (series, timestamp); rows whose actual has not arrived yet are left out. The
scores are those the model's test part was given (MAE, RMSE, bias, WQL, P10-P90
coverage), overall, per lead time (the k-th forecast step of its series) and per series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.scoring.intervals import weighted_quantile_loss

#: The interval whose coverage is watched: P10-P90.
COVERAGE_QUANTILES = (0.1, 0.9)
#: Series kept in an evaluation's per-series table, worst MAE first: enough to find the
#: meters that went wrong without storing a table per forecast for ten thousand meters.
MAX_SERIES = 200
#: The series key of a set without a series column.
ONE_SERIES = "_series"


@dataclass(frozen=True)
class ForecastScores:
    """What a forecast's rows with actuals say about it (``rows`` 0: none arrived yet)."""

    forecast_rows: int
    rows: int
    metrics: dict[str, float] = field(default_factory=dict)
    by_lead: list[dict[str, Any]] = field(default_factory=list)
    by_series: dict[str, dict[str, float]] = field(default_factory=dict)


def score_forecast(forecast: pd.DataFrame, actuals: pd.DataFrame) -> ForecastScores:
    """Score ``forecast`` against ``actuals`` (``series``, ``timestamp``, ``actual``; a
    null series for a set without one). Timestamps are compared in UTC."""
    joined = with_actuals(forecast, actuals)
    if joined.empty:
        return ForecastScores(forecast_rows=len(forecast), rows=0)
    quantiles = quantile_columns(joined)
    return ForecastScores(
        forecast_rows=len(forecast),
        rows=len(joined),
        metrics=_metrics(joined, quantiles),
        by_lead=[
            {"lead": lead, **_metrics(joined[joined["lead"] == lead], quantiles)}
            for lead in sorted(int(v) for v in joined["lead"].unique())
        ],
        by_series=_by_series(joined, quantiles),
    )


def with_actuals(forecast: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """The forecast's rows that have an actual, each with its ``actual`` and ``lead``
    (series keyed as strings, ``ONE_SERIES`` for a set without one). Only the actual is
    taken from ``actuals``: a covariate named ``q1`` or ``lead`` is not the forecast's."""
    known = _keyed(actuals)[["series", "timestamp", "actual"]].dropna(subset=["actual"])
    return _with_leads(forecast).merge(known, on=["series", "timestamp"], how="inner")


def _with_leads(forecast: pd.DataFrame) -> pd.DataFrame:
    """The forecast keyed like the actuals, each row with its lead (1: the first step)."""
    rows = _keyed(forecast)
    rows = rows.sort_values(["series", "timestamp"], kind="stable")
    rows["lead"] = rows.groupby("series").cumcount() + 1
    return rows


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    keyed = frame.copy()
    series = keyed["series"] if "series" in keyed else pd.Series(None, index=keyed.index)
    keyed["series"] = series.astype(object).where(series.notna(), ONE_SERIES).astype(str)
    keyed["timestamp"] = pd.to_datetime(keyed["timestamp"], utc=True)
    return keyed


def quantile_columns(frame: pd.DataFrame) -> dict[float, str]:
    """A forecast's quantile columns (``q0.1``) by quantile, ascending."""
    columns = {}
    for column in frame.columns:
        if column.startswith("q"):
            try:
                columns[float(column[1:])] = column
            except ValueError:
                continue
    return dict(sorted(columns.items()))


def _metrics(frame: pd.DataFrame, quantiles: dict[float, str]) -> dict[str, float]:
    actual = frame["actual"].to_numpy(dtype=float)
    predicted = frame["predicted"].to_numpy(dtype=float)
    errors = predicted - actual
    metrics = {
        "rows": float(len(frame)),
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "bias": float(np.mean(errors)),
    }
    low, high = (quantiles.get(q) for q in COVERAGE_QUANTILES)
    if low is not None and high is not None:
        inside = (actual >= frame[low].to_numpy(float)) & (actual <= frame[high].to_numpy(float))
        metrics["coverage_80"] = float(np.mean(inside))
    if quantiles and np.sum(np.abs(actual)) > 0:
        bounds = frame[list(quantiles.values())].to_numpy(dtype=float)
        metrics["wql"] = weighted_quantile_loss(actual, bounds, list(quantiles))
    return metrics


def _by_series(frame: pd.DataFrame, quantiles: dict[float, str]) -> dict[str, dict[str, float]]:
    table = {
        str(name): _metrics(group, quantiles) for name, group in frame.groupby("series", sort=True)
    }
    worst = sorted(table, key=lambda name: -table[name]["mae"])[:MAX_SERIES]
    return {name: table[name] for name in sorted(worst)}


def combined(evaluations: Sequence[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """Several evaluations' metrics as one, weighted by their rows (MAE, bias, coverage
    and WQL averaged; RMSE from the mean squared error)."""
    total = sum(rows for rows, _ in evaluations)
    if not total:
        return {}
    result: dict[str, float] = {"rows": float(total)}
    for name in ("mae", "bias", "coverage_80", "wql"):
        weighted = [(rows, m[name]) for rows, m in evaluations if name in m and rows]
        if weighted:
            result[name] = sum(r * v for r, v in weighted) / sum(r for r, _ in weighted)
    squares = [(rows, m["rmse"] ** 2) for rows, m in evaluations if "rmse" in m and rows]
    if squares:
        result["rmse"] = float(np.sqrt(sum(r * v for r, v in squares) / sum(r for r, _ in squares)))
    return result
