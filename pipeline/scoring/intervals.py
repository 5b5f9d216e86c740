"""Forecast quantiles calibrated on out-of-sample errors, and the scores that judge them.

By default a quantile is the point forecast plus a conformal quantile of the residuals,
each divided by the spread expected where it fell: the mean absolute residual of its
series times that of its time of day (an evening peak misses by more than 4 a.m., a large
meter by more than a small one), taken around their median. The residuals are the
validation part's, forecast as the served model forecasts (``pipeline.training.calibration``:
members fitted only on rows before each of several origins): split conformal prediction,
normalised as in Lei et al. (2018). This costs no quantile booster, and on the real
load sets of bench/forecast.py its coverage stayed nearer the nominal share than the
quantile boosters'.

A job may instead ask for quantile boosters (``config.quantile_method``): each central
interval (quantiles q and 1 - q, e.g. P10-P90) then comes from two LightGBM quantile
boosters, widened or narrowed by the amount that made them cover the validation part as
often as asked (conformalized quantile regression, Romano et al., 2019).

The job measures the coverage on the untouched test part (``coverage_80``).
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
class SpreadFactor:
    """How much wider than average the residuals run where feature column ``feature``
    holds each of ``values`` (sorted); a value never seen counts as average (1)."""

    feature: int
    values: tuple[float, ...]
    factors: tuple[float, ...]

    def of(self, X: np.ndarray) -> np.ndarray:
        column = np.asarray(X[:, self.feature], dtype=float)
        if not self.values:
            return np.ones(len(column))
        values = np.asarray(self.values)
        at = np.clip(np.searchsorted(values, column), 0, len(values) - 1)
        factors: np.ndarray = np.where(values[at] == column, np.asarray(self.factors)[at], 1.0)
        return factors

    @classmethod
    def fit(cls, feature: int, column: np.ndarray, ratios: np.ndarray) -> SpreadFactor:
        """The mean of ``ratios`` (absolute residuals over the spread so far) per value."""
        values, index = np.unique(np.asarray(column, dtype=float), return_inverse=True)
        sums = np.bincount(index, weights=ratios, minlength=len(values))
        counts = np.bincount(index, minlength=len(values))
        return cls(feature, tuple(map(float, values)), tuple(map(float, sums / counts)))


@dataclass(frozen=True)
class Spread:
    """The expected size of a forecast's error, row by row: the mean absolute residual,
    times a factor per series and per time of day (each fitted on the residuals left
    unexplained by the ones before it)."""

    scale: float = 1.0
    factors: tuple[SpreadFactor, ...] = ()

    def of(self, X: np.ndarray | None, rows: int) -> np.ndarray:
        spread = np.full(rows, self.scale)
        for factor in self.factors:
            assert X is not None, "a spread with factors needs the feature rows"
            spread = spread * factor.of(X)
        return spread

    @classmethod
    def fit(cls, residuals: np.ndarray, X: np.ndarray, features: Sequence[int]) -> Spread:
        size = np.abs(np.asarray(residuals, dtype=float))
        scale = float(np.mean(size))
        if scale <= 0:
            return cls(1.0)
        spread = cls(scale)
        for feature in features:
            ratios = size / spread.of(X, len(size))
            spread = cls(scale, (*spread.factors, SpreadFactor.fit(feature, X[:, feature], ratios)))
        return spread

    def as_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "factors": [
                {"feature": f.feature, "values": list(f.values), "factors": list(f.factors)}
                for f in self.factors
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spread:
        factors = tuple(
            SpreadFactor(
                int(f["feature"]), tuple(map(float, f["values"])), tuple(map(float, f["factors"]))
            )
            for f in data["factors"]
        )
        return cls(float(data["scale"]), factors)


@dataclass(frozen=True)
class QuantileCalibration:
    """How each quantile forecast is made from the point forecast (and, with quantile
    boosters, theirs): ``widen`` moves a paired quantile's booster forecast outwards (a
    negative value narrows); otherwise ``offsets`` times the row's ``spread`` is added to
    the point forecast."""

    quantiles: tuple[float, ...]
    widen: Mapping[str, float]
    offsets: Mapping[str, float]
    spread: Spread = Spread()

    def bounds(
        self, point: np.ndarray, boosted: Mapping[float, np.ndarray], X: np.ndarray | None = None
    ) -> np.ndarray:
        """One column per quantile, one row per forecast, non-decreasing along each row;
        ``X``: the forecast rows' features, which a spread with factors reads."""
        point = np.asarray(point, dtype=float)
        spread = self.spread.of(X, len(point)) if self.offsets else None
        columns = []
        for q in self.quantiles:
            key = quantile_key(q)
            if key in self.widen:
                direction = -1.0 if q < 0.5 else 1.0
                columns.append(np.asarray(boosted[q]) + direction * self.widen[key])
            else:
                assert spread is not None
                columns.append(point + self.offsets[key] * spread)
        bounds: np.ndarray = np.sort(np.column_stack(columns), axis=1)
        return bounds

    def as_dict(self) -> dict[str, Any]:
        method = "conformalized quantile regression" if self.widen else "normalized conformal"
        return {
            "method": method,
            "quantiles": list(self.quantiles),
            "widen": dict(self.widen),
            "offsets": dict(self.offsets),
            "spread": self.spread.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileCalibration:
        """A stored calibration; one stored before spreads existed adds raw residual
        quantiles (a spread of 1), as it was made."""
        spread = Spread.from_dict(data["spread"]) if "spread" in data else Spread()
        return cls(
            tuple(float(q) for q in data["quantiles"]),
            {k: float(v) for k, v in data["widen"].items()},
            {k: float(v) for k, v in data["offsets"].items()},
            spread,
        )


def conformal_quantile(scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of calibration ``scores`` with split conformal's finite-sample
    correction, which moves it outwards (a lower quantile down, an upper one up)."""
    return float(np.quantile(scores, conformal_level(len(scores), quantile)))


def conformal_level(n: int, quantile: float) -> float:
    """The level at which ``n`` scores' empirical quantile is their conformal
    ``quantile``: moved outwards by split conformal's finite-sample correction."""
    if quantile > 0.5:
        return min(1.0, quantile * (n + 1) / n)
    if quantile < 0.5:
        return max(0.0, (quantile * (n + 1) - 1) / n)
    return quantile  # the median: no side to widen towards


def calibrate(
    actual: np.ndarray,
    point: np.ndarray,
    boosted: Mapping[float, np.ndarray],
    quantiles: Sequence[float],
    X: np.ndarray | None = None,
    spread_features: Sequence[int] = (),
) -> QuantileCalibration:
    """Fit the calibration on a part no booster trained on (the validation part).

    For each central interval with quantile boosters, the widening is the (nominal
    coverage)-quantile of the conformity scores max(lower - actual, actual - upper), with
    the finite-sample correction. Every other quantile is an offset: that quantile of the
    point forecast's residuals over their spread, which ``spread_features`` (columns of
    ``X``, e.g. the series and the time of day) shape, taken around their median: the
    served members are refitted on the calibration rows, so the level error that the
    calibrating forecasts made there is not theirs (the median is the point forecast).
    """
    actual = np.asarray(actual, dtype=float)
    residuals = actual - np.asarray(point)
    widen: dict[str, float] = {}
    for low, high, _ in central_intervals(quantiles):
        if quantiles[low] not in boosted or quantiles[high] not in boosted:
            continue
        lower, upper = boosted[quantiles[low]], boosted[quantiles[high]]
        scores = np.maximum(lower - actual, actual - upper)
        n = len(scores)
        probability = min(1.0, (quantiles[high] - quantiles[low]) * (n + 1) / n)
        amount = float(np.quantile(scores, probability))
        widen[quantile_key(quantiles[low])] = amount
        widen[quantile_key(quantiles[high])] = amount
    unpaired = [q for q in quantiles if quantile_key(q) not in widen]
    spread = Spread()
    if unpaired and spread_features:
        assert X is not None, "spread features need the calibration rows"
        spread = Spread.fit(residuals, X, spread_features)
    expected = spread.of(X, len(residuals))
    # Where the spread is 0 (a time of day forecast exactly, as a meter off at night) the
    # interval has no width; the other rows' scores set the quantiles.
    uncertain = expected > 0
    normalized = residuals[uncertain] / expected[uncertain]
    if len(normalized):
        normalized = normalized - np.median(normalized)
    offsets = {
        quantile_key(q): conformal_quantile(normalized, q) if len(normalized) else 0.0
        for q in unpaired
    }
    return QuantileCalibration(tuple(quantiles), widen, offsets, spread)


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
