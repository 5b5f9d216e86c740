"""How a model's quantiles are made: conformal offsets from out-of-sample validation
residuals, scaled by the spread expected where each fell (``pipeline.scoring.intervals``),
or, when a job asks for them, quantile boosters widened by the same calibration."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.features.build import SERIES_FEATURE
from pipeline.features.preprocess import PreparedFeatures, Split
from pipeline.scoring.intervals import QuantileCalibration, calibrate, quantile_metrics
from pipeline.scoring.windows import window_numbers
from pipeline.training.blend import Member
from pipeline.training.fitting import Fitted

logger = logging.getLogger(__name__)

#: Quantile boosters learn this much faster than the point boosters (up to the cap): on the
#: real load sets of bench/forecast.py the faster rate gave the same weighted quantile loss
#: in less time.
QUANTILE_RATE_FACTOR = 2.0
QUANTILE_MAX_RATE = 0.2
#: The features whose values the conformal quantiles' spread follows, where a model has them.
SPREAD_FEATURES = (SERIES_FEATURE, "time_of_day")
#: The scores of each central interval reported per calibration window.
WINDOW_SCORES = ("coverage_", "interval_width_")


def quantile_params(params: dict[str, Any], alpha: float) -> dict[str, Any]:
    """A quantile booster's parameters: the first member's (with its rounds ceiling), at
    a faster rate, early-stopped on its pinball loss."""
    base = {k: v for k, v in params.items() if k != "objective"}
    rate = float(base.get("learning_rate", 0.1))
    base["learning_rate"] = max(rate, min(QUANTILE_RATE_FACTOR * rate, QUANTILE_MAX_RATE))
    return {**base, "objective": "quantile", "alpha": alpha, "metric": ["quantile"]}


@dataclass(frozen=True)
class CalibratedQuantiles:
    """The quantile boosters' refits (if any), the calibration, and how its central
    intervals did on each calibration window (``window_scores``)."""

    members: tuple[Member, ...] = ()
    calibration: QuantileCalibration | None = None
    windows: dict[str, list[float]] = field(default_factory=dict)


def calibrated_quantiles(
    data: PreparedFeatures,
    quantiles: Sequence[float],
    validation: np.ndarray,
    fitted: dict[float, Fitted],
) -> CalibratedQuantiles:
    """The quantile boosters' refits (if any), and the calibration from the early-stopped
    fits' validation forecasts: out of sample, as the served model's forecasts are."""
    if not quantiles:
        return CalibratedQuantiles()
    boosted = {
        q: np.asarray(f.fit.booster.predict(data.validation.X, num_iteration=f.fit.best_iteration))
        for q, f in fitted.items()
    }
    spread_features = [
        data.feature_names.index(name) for name in SPREAD_FEATURES if name in data.feature_names
    ]
    keep = data.validation.normal  # a labelled incident would widen every interval
    kept = {q: forecasts[keep] for q, forecasts in boosted.items()}
    normal = data.validation.unlabelled()
    calibration = calibrate(normal.y, validation[keep], kept, quantiles, normal.X, spread_features)
    members = tuple(Member("quantile", f.refitted, f.rounds, q) for q, f in fitted.items())
    if members:
        logger.info(
            "quantile boosters: %s; conformal widening %s",
            ", ".join(f"P{100 * m.alpha:g} {m.rounds} rounds" for m in members if m.alpha),
            ", ".join(f"{k}: {v:.4g}" for k, v in calibration.widen.items()),
        )
    if calibration.offsets:
        logger.info(
            "conformal quantiles from %d validation residuals, scaled by %s: %s",
            len(validation),
            " and ".join(data.feature_names[i] for i in spread_features) or "nothing",
            ", ".join(f"P{100 * float(k):g} {v:+.3g}" for k, v in calibration.offsets.items()),
        )
    bounds = calibration.bounds(validation, boosted, data.validation.X)
    windows = window_scores(data.validation, bounds, quantiles)
    for name, values in windows.items():
        logger.info(
            "%s on the calibration windows: %s", name, ", ".join(f"{v:.3g}" for v in values)
        )
    return CalibratedQuantiles(members, calibration, windows)


def window_scores(
    validation: Split, bounds: np.ndarray, quantiles: Sequence[float]
) -> dict[str, list[float]]:
    """Coverage and mean width of each central interval on each calibration window of the
    validation part, in time order. Their residuals made the calibration, so the windows'
    coverage averages about the nominal one by construction; what it shows is how steady
    it was, and a drift that the test part may continue."""
    window = window_numbers(validation.timestamps)
    scores: dict[str, list[float]] = {}
    for number in np.unique(window):
        inside = window == number
        metrics = quantile_metrics(validation.y[inside], bounds[inside], quantiles)
        for name, value in metrics.items():
            if name.startswith(WINDOW_SCORES):
                scores.setdefault(name, []).append(value)
    return scores
