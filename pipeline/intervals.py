"""Forecast quantiles by conformalized quantile regression, and the scores that judge them.

Each central interval (quantiles q and 1 - q, e.g. P10-P90) comes from two LightGBM
quantile boosters, widened or narrowed by the amount that made them cover the validation
part as often as asked (Romano et al., 2019): the boosters give intervals that adapt to
the situation (an evening peak is harder than 4 a.m.), the conformal step sets their
coverage. A quantile without a partner (the median) is the point forecast plus that
quantile of the validation part's out-of-sample residuals. The calibration is fitted on
the boosters trained before the validation part; the boosters that serve are refitted on
training + validation, so the coverage is close to nominal rather than guaranteed, and the
job measures it on the untouched test part (``coverage_80``).

On the real load sets this beat plain residual quantiles (pooled, per time of day, or
scaled) and mlforecast's conformal intervals on weighted quantile loss (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def central_intervals(quantiles: Sequence[float]) -> list[tuple[int, int, int]]:
    """(lower column, upper column, nominal %) for each pair q, 1 - q among ``quantiles``."""
    pairs = []
    for i, low in enumerate(quantiles):
        for j in range(len(quantiles) - 1, i, -1):
            if abs(quantiles[j] - (1 - low)) < 1e-9:
                pairs.append((i, j, round(100 * (quantiles[j] - low))))
    return pairs


def paired_quantiles(quantiles: Sequence[float]) -> list[float]:
    """The quantiles that bound a central interval: each gets a booster of its own."""
    return sorted({quantiles[i] for pair in central_intervals(quantiles) for i in pair[:2]})


def quantile_key(quantile: float) -> str:
    """A quantile as a key of forecasts and stored calibrations: 0.1 -> ``"0.1"``."""
    return f"{quantile:g}"


@dataclass(frozen=True)
class QuantileCalibration:
    """How each quantile forecast is made from the point forecast and the quantile
    boosters' forecasts: ``widen`` moves a paired quantile's booster forecast outwards
    (a negative value narrows), ``offsets`` are added to the point forecast."""

    quantiles: tuple[float, ...]
    widen: Mapping[str, float]
    offsets: Mapping[str, float]

    def bounds(self, point: np.ndarray, boosted: Mapping[float, np.ndarray]) -> np.ndarray:
        """One column per quantile, one row per forecast, non-decreasing along each row."""
        columns = []
        for q in self.quantiles:
            key = quantile_key(q)
            if key in self.widen:
                direction = -1.0 if q < 0.5 else 1.0
                columns.append(np.asarray(boosted[q]) + direction * self.widen[key])
            else:
                columns.append(np.asarray(point) + self.offsets[key])
        bounds: np.ndarray = np.sort(np.column_stack(columns), axis=1)
        return bounds

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "conformalized quantile regression",
            "quantiles": list(self.quantiles),
            "widen": dict(self.widen),
            "offsets": dict(self.offsets),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileCalibration:
        return cls(
            tuple(float(q) for q in data["quantiles"]),
            {k: float(v) for k, v in data["widen"].items()},
            {k: float(v) for k, v in data["offsets"].items()},
        )


def calibrate(
    actual: np.ndarray,
    point: np.ndarray,
    boosted: Mapping[float, np.ndarray],
    quantiles: Sequence[float],
) -> QuantileCalibration:
    """Fit the calibration on a part no booster trained on (the validation part).

    For each central interval, the widening is the (nominal coverage)-quantile of the
    conformity scores max(lower - actual, actual - upper), with the finite-sample
    correction; for each unpaired quantile, the offset is that quantile of the point
    forecast's residuals.
    """
    actual = np.asarray(actual, dtype=float)
    residuals = actual - np.asarray(point)
    widen: dict[str, float] = {}
    for low, high, _ in central_intervals(quantiles):
        lower, upper = boosted[quantiles[low]], boosted[quantiles[high]]
        scores = np.maximum(lower - actual, actual - upper)
        n = len(scores)
        probability = min(1.0, (quantiles[high] - quantiles[low]) * (n + 1) / n)
        amount = float(np.quantile(scores, probability))
        widen[quantile_key(quantiles[low])] = amount
        widen[quantile_key(quantiles[high])] = amount
    offsets = {
        quantile_key(q): float(np.quantile(residuals, q))
        for q in quantiles
        if quantile_key(q) not in widen
    }
    return QuantileCalibration(tuple(quantiles), widen, offsets)


def pinball_loss(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float:
    """The mean quantile (pinball) loss of one quantile's forecasts."""
    error = actual - forecast
    return float(np.mean(np.maximum(quantile * error, (quantile - 1) * error)))


def weighted_quantile_loss(
    actual: np.ndarray, bounds: np.ndarray, quantiles: Sequence[float]
) -> float:
    """AutoGluon's and Amazon Forecast's WQL: twice the summed pinball losses over the
    summed |actual|, averaged over the quantiles."""
    scale = float(np.sum(np.abs(actual)))
    losses = [
        2 * pinball_loss(actual, bounds[:, i], q) * len(actual) / scale
        for i, q in enumerate(quantiles)
    ]
    return float(np.mean(losses))


def quantile_label(quantile: float) -> str:
    """A quantile as metric names and columns spell it: 0.1 -> ``p10``, 0.025 -> ``p2.5``."""
    return f"p{100 * quantile:g}"


def quantile_metrics(
    actual: np.ndarray, bounds: np.ndarray, quantiles: Sequence[float]
) -> dict[str, float]:
    """Coverage and mean width of each central interval, pinball loss per quantile, WQL."""
    metrics: dict[str, float] = {}
    for low, high, level in central_intervals(quantiles):
        inside = (actual >= bounds[:, low]) & (actual <= bounds[:, high])
        metrics[f"coverage_{level}"] = float(np.mean(inside))
        metrics[f"interval_width_{level}"] = float(np.mean(bounds[:, high] - bounds[:, low]))
    for i, q in enumerate(quantiles):
        metrics[f"pinball_{quantile_label(q)}"] = pinball_loss(actual, bounds[:, i], q)
    if len(actual) and np.sum(np.abs(actual)) > 0:
        metrics["wql"] = weighted_quantile_loss(actual, bounds, quantiles)
    return metrics
