"""A model's boosters and what they say together: the blend's forecast, its quantiles,
each feature's contribution and importance.

A model forecasts the mean of its point boosters (by default a mean (L2) and a median (L1)
booster: on the real load sets of bench/forecast.py an even blend forecast better than
either alone); its calibration (and quantile boosters, when a job asks for them)
give its quantiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from pipeline.scoring.intervals import QuantileCalibration


@dataclass(frozen=True)
class Member:
    """One booster of a model, trained on training + validation rows (``alpha``: the
    quantile a quantile booster forecasts)."""

    objective: str
    booster: lgb.Booster
    rounds: int
    alpha: float | None = None


def blend_predict(members: Sequence[Member], X: np.ndarray) -> np.ndarray:
    """The members' mean forecast."""
    forecasts = [np.asarray(m.booster.predict(X, num_iteration=m.rounds)) for m in members]
    blended: np.ndarray = np.mean(forecasts, axis=0)
    return blended


def quantile_forecasts(
    calibration: QuantileCalibration | None,
    members: Sequence[Member],
    X: np.ndarray,
    point: np.ndarray,
) -> np.ndarray | None:
    """The calibrated quantile forecasts for rows ``X`` whose point forecasts are ``point``."""
    if calibration is None:
        return None
    boosted = {
        m.alpha: np.asarray(m.booster.predict(X, num_iteration=m.rounds))
        for m in members
        if m.alpha is not None
    }
    return calibration.bounds(point, boosted, X)


def blend_contributions(members: Sequence[Member], X: np.ndarray) -> np.ndarray:
    """Per-row feature contributions (LightGBM ``pred_contrib``; the last column is the
    expected value), averaged over the members: each row sums to the blended forecast."""
    parts = [
        np.asarray(m.booster.predict(X, num_iteration=m.rounds, pred_contrib=True)) for m in members
    ]
    contributions: np.ndarray = np.mean(parts, axis=0)
    return contributions


def blend_importance(members: Sequence[Member], names: Sequence[str]) -> dict[str, float]:
    """Total gain of the splits on each feature, averaged over the members."""
    gains = np.mean(
        [m.booster.feature_importance("gain", iteration=m.rounds) for m in members], axis=0
    )
    return {name: float(gain) for name, gain in zip(names, gains, strict=True)}


@dataclass(frozen=True)
class Blend:
    """A model's boosters: its point blend, calibrated quantiles and contributions (a
    ``TrainedModel`` is one, with what its training learned; an artifact reads one back)."""

    members: tuple[Member, ...]
    quantile_members: tuple[Member, ...] = ()
    calibration: QuantileCalibration | None = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return blend_predict(self.members, X)

    def predict_quantiles(self, X: np.ndarray, point: np.ndarray) -> np.ndarray | None:
        return quantile_forecasts(self.calibration, self.quantile_members, X, point)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return blend_contributions(self.members, X)
