"""Whether a trial beat the default parameters by more than chance: each trial is scored on
several windows of the validation part (rolling origins, as the quantiles' calibration cuts
it), and the best trial replaces the default only when its mean error over the windows is
lower by more than the standard error of the paired differences.

On one validation split a search's best trial beat the default by less than the change
from one window to the next, and did not carry to the test part (bench/README.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from pipeline.features.preprocess import PreparedData
from pipeline.training.calibration import WINDOWS, window_origins


def window_errors(data: PreparedData, booster: lgb.Booster, best_iteration: int) -> list[float]:
    """The booster's mean absolute error on each of ``WINDOWS`` windows of the validation
    part, in time order."""
    stamps = data.validation.timestamps
    errors = np.abs(
        booster.predict(data.validation.X, num_iteration=best_iteration) - data.validation.y
    )
    window = np.searchsorted(np.asarray(window_origins(stamps, WINDOWS)), stamps, side="right")
    return [float(errors[window == w].mean()) for w in np.unique(window)]


@dataclass(frozen=True)
class Verdict:
    """How a trial did against the defaults over the windows: its mean gain and the margin
    it had to clear (both relative to the defaults' mean error)."""

    gain: float
    margin: float

    @property
    def won(self) -> bool:
        return self.gain > self.margin


def verdict(trial: Sequence[float], default: Sequence[float]) -> Verdict | None:
    """``trial``'s per-window errors against the ``default``'s, or None when they cannot
    be paired (another number of windows, or fewer than two)."""
    if len(trial) != len(default) or len(trial) < 2:
        return None
    differences = np.asarray(default) - np.asarray(trial)
    scale = float(np.mean(default))
    standard_error = float(np.std(differences, ddof=1)) / math.sqrt(len(differences))
    return Verdict(float(differences.mean()) / scale, standard_error / scale)
