"""The errors a trial is judged by against the default parameters: its mean absolute error
on each of several windows of the validation part (rolling origins, as the quantiles'
calibration cuts it). The best trial replaces the default only when its mean error over
the windows is lower by more than chance (``domain.comparison.verdict``).

On one validation split a search's best trial beat the default by less than the change
from one window to the next, and did not carry to the test part (bench/forecast.py
measures HPO against the default job).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from pipeline.features.preprocess import PreparedData
from pipeline.scoring.windows import window_maes


def window_errors(data: PreparedData, booster: lgb.Booster, best_iteration: int) -> list[float]:
    """The booster's mean absolute error on each calibration window of the validation part
    (``pipeline.scoring.windows``), in time order, over the rows not labelled
    as anomalies (a trial is not judged by how it forecasts an incident)."""
    validation = data.validation
    predicted = np.asarray(booster.predict(validation.X, num_iteration=best_iteration))
    return window_maes(predicted, validation.y, validation.timestamps, validation.normal)
