"""The validation part cut by time into windows (rolling origins, as a backtest's): the
quantiles are calibrated window by window, and the target a model forecasts and a
search's trials are judged by their error on each."""

from __future__ import annotations

import numpy as np

#: Rolling origins over the validation part (the first is the early-stopped fits').
WINDOWS = 4


def window_origins(stamps: np.ndarray, windows: int) -> list[np.datetime64]:
    """The first timestamp of each window after the first, cutting ``stamps``' distinct
    times into ``windows`` runs of about equal length (fewer when there are few times)."""
    distinct = np.unique(stamps)
    cuts = sorted({round(i * len(distinct) / windows) for i in range(1, windows)} - {0})
    return [distinct[c] for c in cuts if c < len(distinct)]


def window_numbers(stamps: np.ndarray) -> np.ndarray:
    """The window (0 to ``WINDOWS`` - 1, in time order) of each timestamp of the
    validation part ``stamps``."""
    origins = np.asarray(window_origins(stamps, WINDOWS))
    numbers: np.ndarray = np.searchsorted(origins, stamps, side="right")
    return numbers


def window_maes(
    predicted: np.ndarray, actual: np.ndarray, stamps: np.ndarray, normal: np.ndarray
) -> list[float]:
    """The mean absolute error of ``predicted`` in each window, in time order, over the
    ``normal`` rows (those not labelled as anomalies: a forecast is not judged by how it
    forecasts an incident); a window without such rows has none."""
    errors = np.abs(predicted - actual)
    window = window_numbers(stamps)
    return [float(errors[(window == w) & normal].mean()) for w in np.unique(window[normal])]
