"""The residuals a model's quantiles are calibrated on: out of sample, as it is used.

The served members are refitted on training + validation rows and forecast the days after
them. The residuals that calibrate their quantiles come from members used the same way:
the validation part is cut by time into ``WINDOWS`` windows (rolling origins, as a
backtest's), and each window is forecast by the members refitted on every row before it,
their rounds grown with the rows as the served ones' are. The first window's forecasts are
the early-stopped members' own (every window's, when the served members are the
early-stopped ones: ``refit`` ``none``). Residuals from one origin miss a level that
drifts through the validation part, and their intervals then cover far too little; the
rolling origins follow it (as on the held-back real set of bench/forecast.py).

A job with more than ``MAX_ROWS`` training + validation rows (or rows held elsewhere, as a
data-parallel job's) keeps the early-stopped members' forecasts over the whole part: its
validation part holds plenty of residuals, and the refits would cost more than the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from pipeline.config import RefitMethod
from pipeline.features.preprocess import PreparedData, PreparedFeatures
from pipeline.scoring.windows import WINDOWS, window_origins
from pipeline.training.blend import Member, blend_predict
from pipeline.training.boosters import booster_on, grown_rounds
from pipeline.training.fitting import Fit

logger = logging.getLogger(__name__)

#: Training + validation rows up to which the members are refitted at each origin.
MAX_ROWS = 200_000


def calibration_forecasts(
    data: PreparedFeatures,
    fits: Sequence[Fit],
    early: np.ndarray,
    num_threads: int,
    how: RefitMethod = "full",
    max_rounds: Sequence[int | None] | None = None,
) -> np.ndarray:
    """The validation part's forecasts to calibrate on: ``early`` (the early-stopped
    members' blend) in the first window, then each window's from the members' ``fits``
    refitted on the rows before it, as the served members are (unless ``how`` is ``none``;
    ``max_rounds``: each member's ceiling, ``grown_rounds``)."""
    if not rolls(data, how):
        return early
    assert isinstance(data, PreparedData)
    stamps = data.validation.timestamps
    origins = window_origins(stamps, WINDOWS)
    fitted = data.validation.unlabelled()
    X = np.vstack([data.train.X, fitted.X])
    y = np.concatenate([data.train.y, fitted.y])
    times = np.concatenate([data.train.timestamps, fitted.timestamps])
    forecasts = np.array(early, dtype=float, copy=True)
    for origin, end in zip(origins, [*origins[1:], None], strict=True):
        before = times < origin
        inside = (stamps >= origin) if end is None else (stamps >= origin) & (stamps < end)
        once: dict[int, Member] = {}  # a fit that serves two members is refitted once
        for fit, most in zip(fits, max_rounds or [None] * len(fits), strict=True):
            if id(fit) not in once:
                once[id(fit)] = _refitted(data, fit, X[before], y[before], num_threads, most)
        refitted = [once[id(fit)] for fit in fits]
        forecasts[inside] = blend_predict(refitted, data.validation.X[inside])
    logger.info(
        "calibration: the validation part forecast from %d rolling origins, the members "
        "refitted at each",
        len(origins) + 1,
    )
    return forecasts


def rolls(data: PreparedFeatures, how: RefitMethod) -> bool:
    """Whether ``data``'s calibration refits the members at rolling origins (not when
    the served members are the early-stopped ones: ``how`` is ``none``)."""
    rows = data.train_rows + len(data.validation.y)
    return isinstance(data, PreparedData) and rows <= MAX_ROWS and how != "none"


def _refitted(
    data: PreparedData,
    fit: Fit,
    X: np.ndarray,
    y: np.ndarray,
    num_threads: int,
    max_rounds: int | None,
) -> Member:
    rounds = grown_rounds(fit.best_iteration, data.train_rows, len(y) - data.train_rows, max_rounds)
    params = {k: v for k, v in fit.params.items() if k != "num_iterations"}
    params["num_threads"] = num_threads
    return Member(str(params["objective"]), booster_on(data, X, y, params, rounds), rounds)
