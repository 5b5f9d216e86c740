"""Alarms grouped into events a team can act on.

Alarms of one series at most ``gap`` rows apart are one event, from its first alarm to
its last, with the peak score and a severity. After an event, alarms in the next
``suppress`` rows are dropped: a horizon-1 model reads the anomalous values in its lags
for a while after them, and its echoes are the same incident, not new ones (Merlion's
alarm suppression). A flag marks every row of an event, so the rows' flags and the events
say the same thing. Rows, not steps, are counted: an event may span a hole in the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

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
) -> Events:
    """Events from per-row alarms; rows are in time order within each series, a step
    apart. Returned in order of start (then series)."""
    flags = np.zeros(len(alarms), dtype=bool)
    events: list[AnomalyEvent] = []
    keys = np.zeros(len(alarms)) if series is None else np.asarray(series)
    for name in pd.unique(keys):
        rows = np.flatnonzero(keys == name)
        for first, last in _spans(np.flatnonzero(alarms[rows]), gap, suppress):
            covered = rows[first : last + 1]
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


def _spans(alarm_rows: np.ndarray, gap: int, suppress: int) -> list[tuple[int, int]]:
    """First and last position of each event among a series' alarm positions: an alarm
    within ``gap`` of the open event's last one extends it, one within ``suppress`` of it
    is dropped, a later one starts the next event."""
    spans: list[tuple[int, int]] = []
    for row in alarm_rows.tolist():
        since = row - spans[-1][1] if spans else None
        if since is not None and since <= gap:
            spans[-1] = (spans[-1][0], row)
        elif since is None or since > suppress:
            spans.append((row, row))
    return spans
