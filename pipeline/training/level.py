"""A target taken relative to the series' recent level, where that forecasts better.

A regression tree forecasts no value outside those it trained on, so a model of a series
that trends (weekly fuel sales, a population's deaths) trails it. Its boosters can instead
learn the target minus the series' level known at the forecast's origin (the shortest
rolling mean among the features: a week of days, a month of weeks), and the model adds
that level back; on series with a steady level the absolute target does better.

So a job on daily or coarser data tries both on the validation part, and keeps the
relative target when its mean error over the validation windows is lower by ``MARGIN``
(bench/forecast.py measures the choice on the real sets). Sub-daily data keeps the
absolute target: its shortest level is a day's mean, which carries a holiday's dip into
the day after (on the real hourly set cut to 12 weeks, the relative target won the
validation windows and lost the test part's Christmas week by 39 %). So do jobs with
fewer than ``MIN_VALIDATION_ROWS`` to choose on, more than ``MAX_ROWS`` to fit, a time
budget, or data-parallel ones. The errors, and so the calibrated quantiles and anomaly scores, are
those of the same forecasts either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from pipeline.features.preprocess import PreparedData, Split

#: The relative target is kept when its validation MAE is this much below the absolute's.
MARGIN = 0.01
#: Training + validation rows up to which a job tries the relative target.
MAX_ROWS = 200_000
#: The finest cadence that tries it.
MIN_STEP = pd.Timedelta(days=1)
#: Validation rows a choice needs: on fewer, the windows' errors decide by chance (on
#: the weekly set cut to four years, 41 rows chose the relative target, which lost 14 %
#: on the test part).
MIN_VALIDATION_ROWS = 100
LEVEL_PREFIX = "roll_mean_"


@dataclass(frozen=True)
class Level:
    """The level a model's boosters forecast relative to: feature ``feature`` (column
    ``column`` of the scaled rows, scaled by ``mean`` and ``scale``), ``fallback`` (the
    training target's mean) where it is missing."""

    feature: str
    column: int
    mean: float
    scale: float
    fallback: float

    def of(self, X: np.ndarray) -> np.ndarray:
        """Each scaled row's level."""
        level: np.ndarray = X[:, self.column] * self.scale + self.mean
        return np.where(np.isnan(level), self.fallback, level)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Level:
        return cls(**stored)


def level_of(data: PreparedData) -> Level | None:
    """The level ``data``'s model could forecast relative to: its shortest rolling mean
    (None without one, for sub-daily data, with fewer than ``MIN_VALIDATION_ROWS`` to
    choose on or more than ``MAX_ROWS`` rows to fit)."""
    rows = data.train_rows + len(data.validation.y)
    if data.spec.step < MIN_STEP or rows > MAX_ROWS:
        return None
    if len(data.validation.y) < MIN_VALIDATION_ROWS:
        return None
    means = [name for name in data.feature_names if name.startswith(LEVEL_PREFIX)]
    if not means:
        return None
    feature = min(means, key=lambda name: int(name.removeprefix(LEVEL_PREFIX)))
    column = data.feature_names.index(feature)
    return Level(
        feature,
        column,
        float(data.scaler.mean_[column]),
        float(data.scaler.scale_[column]),
        float(np.mean(data.train.y)),
    )


def relative_to(data: PreparedData, level: Level) -> PreparedData:
    """``data`` with each part's target minus its rows' level."""

    def shifted(split: Split) -> Split:
        return replace(split, y=split.y - level.of(split.X)) if len(split.y) else split

    return replace(
        data,
        train=shifted(data.train),
        validation=shifted(data.validation),
        test=shifted(data.test),
    )


def better_relative(absolute: Sequence[float], relative: Sequence[float]) -> bool:
    """Whether the relative target's mean error over the validation windows is below the
    absolute one's by ``MARGIN``. (Their paired t test, the rule a search keeps a trial
    by, kept none on the real sets: on four windows a trend's gain is as uneven as
    chance.)"""
    return float(np.mean(relative)) < (1 - MARGIN) * float(np.mean(absolute))
