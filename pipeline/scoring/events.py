"""Alarms grouped into events a team can act on.

Alarms of one series at most ``gap`` steps apart are one event, from its first alarm to
its last, with the peak score and a severity. After an event, alarms in the next
``suppress`` steps are dropped: a horizon-1 model reads the anomalous values in its lags
for a while after them, and its echoes are the same incident, not new ones (Merlion's
alarm suppression). An alarm a severity step (``SEVERITY_STEPS["medium"]``) above the
event's peak is no echo of it, and starts an event of its own: a marginal event would
otherwise hide a larger incident hours after it. A flag marks every row of an event, so
the rows' flags and the events say the same thing. Steps of the series' cadence are
counted, not rows: alarms either side of a day missing from the data are a day apart, as
the lags that echo them are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.scoring.series import rows_by_series

Severity = Literal["low", "medium", "high"]
#: How far above the threshold (in calibrated standard-normal units) a peak must be for a
#: medium or a high severity: past a threshold of 3 to 4, one unit is 40 to 80 times
#: rarer.
SEVERITY_STEPS = {"medium": 1.0, "high": 2.0}


@dataclass(frozen=True)
class AnomalyEvent:
    """One incident: a series' rows from ``start`` to ``end``, peaking at ``peak_at``."""

    series: str | None
    start: pd.Timestamp
    end: pd.Timestamp
    peak_at: pd.Timestamp
    peak_score: float
    severity: Severity
    rows: int


def severity(peak: float, threshold: float) -> Severity:
    if peak >= threshold + SEVERITY_STEPS["high"]:
        return "high"
    if peak >= threshold + SEVERITY_STEPS["medium"]:
        return "medium"
    return "low"


@dataclass(frozen=True)
class Events:
    """The events of a set of rows and, per row, whether an event covers it."""

    events: list[AnomalyEvent]
    flags: np.ndarray


def group_events(
    timestamps: pd.DatetimeIndex,
    series: np.ndarray | None,
    scores: np.ndarray,
    alarms: np.ndarray,
    threshold: float,
    gap: int,
    suppress: int,
    step: pd.Timedelta | None = None,
) -> Events:
    """Events from per-row alarms; rows are in time order within each series, ``step``
    apart (None: each series' shortest interval). Returned in order of start (then
    series)."""
    flags = np.zeros(len(alarms), dtype=bool)
    events: list[AnomalyEvent] = []
    keys = np.zeros(len(alarms)) if series is None else np.asarray(series)
    for name, rows in rows_by_series(keys).items():
        steps = step_positions(timestamps[rows], step)
        alarmed = alarms[rows]
        for first, last in _spans(steps[alarmed], scores[rows][alarmed], gap, suppress):
            covered = rows[(steps >= first) & (steps <= last)]
            flags[covered] = True
            peak = covered[int(np.nanargmax(scores[covered]))]
            events.append(
                AnomalyEvent(
                    series=None if series is None else str(name),
                    start=timestamps[covered[0]],
                    end=timestamps[covered[-1]],
                    peak_at=timestamps[peak],
                    peak_score=float(scores[peak]),
                    severity=severity(float(scores[peak]), threshold),
                    rows=len(covered),
                )
            )
    events.sort(key=lambda event: (event.start, event.series or ""))
    return Events(events, flags)


def step_positions(stamps: pd.DatetimeIndex, step: pd.Timedelta | None = None) -> np.ndarray:
    """Each of a series' time-ordered ``stamps`` as a count of ``step``s from its first
    (the model's cadence; None: the shortest time between two of them). An interval
    counts as the nearest whole number of steps, one at least: months of 28 to 31 days
    are a step each, and a stray row between two steps does not shrink the step."""
    if len(stamps) < 2:
        return np.zeros(len(stamps), dtype=np.int64)
    between = np.diff(stamps.as_unit("ns").asi8)
    unit = between[between > 0].min(initial=np.iinfo(np.int64).max) if step is None else step.value
    counts = np.maximum(np.rint(between / unit), 1).astype(np.int64)
    return np.concatenate([[0], np.cumsum(counts)])


def _spans(
    alarm_steps: np.ndarray, alarm_scores: np.ndarray, gap: int, suppress: int
) -> list[tuple[int, int]]:
    """First and last step of each event among a series' alarm steps (and their scores):
    an alarm within ``gap`` steps of the open event's last one extends it, one within
    ``suppress`` of it is dropped unless a severity step above the event's peak, a later
    one starts the next event."""
    spans: list[tuple[int, int]] = []
    peak = -math.inf
    for step, score in zip(alarm_steps.tolist(), alarm_scores.tolist(), strict=True):
        since = step - spans[-1][1] if spans else None
        if since is not None and since <= gap:
            spans[-1] = (spans[-1][0], step)
            peak = max(peak, score)
        elif since is None or since > suppress or score >= peak + SEVERITY_STEPS["medium"]:
            spans.append((step, step))
            peak = score
    return spans
