"""How a model's quantiles are made: conformal offsets from out-of-sample validation
residuals, scaled by the spread expected where each fell (``pipeline.scoring.intervals``),
or, when a job asks for them, quantile boosters widened by the same calibration."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.features.build import SERIES_FEATURE
from pipeline.features.preprocess import PreparedFeatures
from pipeline.scoring.intervals import QuantileCalibration, calibrate
from pipeline.training.blend import Member
from pipeline.training.fitting import Fitted

logger = logging.getLogger(__name__)

#: Quantile boosters learn this much faster than the point boosters (up to the cap): on the
#: real load sets twice the rate gave the same weighted quantile loss in half the time.
QUANTILE_RATE_FACTOR = 2.0
QUANTILE_MAX_RATE = 0.2
#: The features whose values the conformal quantiles' spread follows, where a model has them.
SPREAD_FEATURES = (SERIES_FEATURE, "time_of_day")


def quantile_params(params: dict[str, Any], alpha: float) -> dict[str, Any]:
    """A quantile booster's parameters: the first member's (with its rounds ceiling), at
    a faster rate, early-stopped on its pinball loss."""
    base = {k: v for k, v in params.items() if k != "objective"}
    rate = float(base.get("learning_rate", 0.1))
    base["learning_rate"] = max(rate, min(QUANTILE_RATE_FACTOR * rate, QUANTILE_MAX_RATE))
    return {**base, "objective": "quantile", "alpha": alpha, "metric": ["quantile"]}


def calibrated_quantiles(
    data: PreparedFeatures,
    quantiles: Sequence[float],
    validation: np.ndarray,
    fitted: dict[float, Fitted],
) -> tuple[tuple[Member, ...], QuantileCalibration | None]:
    """The quantile boosters' refits (if any), and the calibration from the early-stopped
    fits' validation forecasts: out of sample, as the served model's forecasts are."""
    if not quantiles:
        return (), None
    boosted = {
        q: np.asarray(f.fit.booster.predict(data.validation.X, num_iteration=f.fit.best_iteration))
        for q, f in fitted.items()
    }
    spread_features = [
        data.feature_names.index(name) for name in SPREAD_FEATURES if name in data.feature_names
    ]
    calibration = calibrate(
        data.validation.y, validation, boosted, quantiles, data.validation.X, spread_features
    )
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
    return members, calibration
