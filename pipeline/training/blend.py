"""A model's boosters and what they say together: the blend's forecast, its quantiles,
each feature's contribution and importance; of a model whose boosters forecast the
target relative to a level (``pipeline.training.level``), with that level added back.

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
from pipeline.training.level import Level


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
    level: Level | None = None,
) -> np.ndarray | None:
    """The calibrated quantile forecasts for rows ``X`` whose point forecasts are ``point``
    (quantile boosters of a model relative to ``level`` forecast the target minus it)."""
    if calibration is None:
        return None
    shift = level.of(X) if level is not None else 0.0
    boosted = {
        m.alpha: np.asarray(m.booster.predict(X, num_iteration=m.rounds)) + shift
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
    #: The level the boosters forecast the target relative to (None: the target itself).
    level: Level | None = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        point = blend_predict(self.members, X)
        return point + self.level.of(X) if self.level is not None else point

    def predict_quantiles(self, X: np.ndarray, point: np.ndarray) -> np.ndarray | None:
        return quantile_forecasts(self.calibration, self.quantile_members, X, point, self.level)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-row feature contributions; a model relative to a level credits the level
        to its feature, so each row still sums to the forecast."""
        contributions = blend_contributions(self.members, X)
        if self.level is not None:
            contributions[:, self.level.column] += self.level.of(X)
        return contributions
