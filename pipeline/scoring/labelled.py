"""Anomaly flags scored against labelled windows: event-wise and point-wise precision,
recall and F1, the Numenta Anomaly Benchmark's score and false alarms per week.

A labelled window is a run of consecutive rows labelled anomalous; a detection is a run of
consecutive flagged rows (an event). Event-wise, a window counts as found when a flag falls
in it, and a detection counts as right when it touches a window: a team acts on events, so
one long alarm over one incident is one right answer, not hundreds. Point-wise scores
count rows, as scikit-learn does.

NAB's score follows its sweeper (Lavin and Ahmad, 2015): in each window only the first
flag counts, worth ``A_TP`` times a sigmoid of how early in the window it fell (1 at the
start, 0 at the end); a missed window costs ``A_FN``; each flag outside every window costs
``A_FP``, less when it falls just after a window. The raw sum is normalized so that
flagging nothing scores 0 and flagging every window's first row scores 100. Every flagged
row counts, as in NAB, so a long run of flags outside a window costs for each of its rows.
NAB's probation (its first 15 % of rows unscored) is the caller's: score the rows after
the detector's training data.

Series are scored one by one and their counts pooled; rows must be in time order within
each series, one row a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.scoring.series import rows_by_series

WEEK = pd.Timedelta(days=7)


@dataclass(frozen=True)
class NabProfile:
    """The weights of NAB's application profiles."""

    true_positive: float
    false_positive: float
    false_negative: float


NAB_STANDARD = NabProfile(true_positive=1.0, false_positive=0.11, false_negative=1.0)
NAB_LOW_FP = NabProfile(true_positive=1.0, false_positive=0.22, false_negative=1.0)
NAB_LOW_FN = NabProfile(true_positive=1.0, false_positive=0.11, false_negative=2.0)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The ``(first, last)`` indices of each run of consecutive true values."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(start), int(end) - 1) for start, end in zip(edges[::2], edges[1::2], strict=True)]


@dataclass
class _Counts:
    detections: int = 0
    right_detections: int = 0
    windows: int = 0
    found_windows: int = 0
    false_alarms: int = 0
    quiet_rows: int = 0
    nab_raw: float = 0.0
    nab_perfect: float = 0.0
    nab_null: float = 0.0

    def add(self, flags: np.ndarray, labels: np.ndarray, profile: NabProfile) -> None:
        windows = runs(labels)
        detections = runs(flags)
        touching = [any(a <= end and start <= b for a, b in windows) for start, end in detections]
        self.detections += len(detections)
        self.right_detections += sum(touching)
        self.false_alarms += len(detections) - sum(touching)
        self.windows += len(windows)
        self.found_windows += sum(bool(flags[a : b + 1].any()) for a, b in windows)
        self.quiet_rows += int((~labels).sum())
        self.nab_raw += nab_raw_score(flags, windows, profile)
        self.nab_perfect += profile.true_positive * len(windows)
        self.nab_null -= profile.false_negative * len(windows)


def label_scores(
    flags: np.ndarray,
    labels: np.ndarray,
    step: pd.Timedelta,
    series: np.ndarray | None = None,
    profile: NabProfile = NAB_STANDARD,
) -> dict[str, float]:
    """Event-wise and point-wise precision, recall and F1, ``nab_score`` and
    ``false_alarms_per_week`` (detections touching no window, per week of unlabelled rows).
    A score with nothing to count (no detections for precision, no windows for recall and
    NAB) is left out rather than reported as a number that means nothing."""
    flags = np.asarray(flags, dtype=bool)
    labels = np.asarray(labels, dtype=bool)
    counts = _Counts()
    if series is None:
        counts.add(flags, labels, profile)
    else:
        for rows in rows_by_series(series).values():
            counts.add(flags[rows], labels[rows], profile)
    scores: dict[str, float] = {}
    _precision_recall(
        scores,
        "event",
        counts.right_detections,
        counts.detections,
        counts.found_windows,
        counts.windows,
    )
    right_points = int((flags & labels).sum())
    _precision_recall(
        scores, "point", right_points, int(flags.sum()), right_points, int(labels.sum())
    )
    if counts.windows:
        scores["nab_score"] = (
            100 * (counts.nab_raw - counts.nab_null) / (counts.nab_perfect - counts.nab_null)
        )
    quiet_weeks = counts.quiet_rows * step / WEEK
    if quiet_weeks > 0:
        scores["false_alarms_per_week"] = counts.false_alarms / quiet_weeks
    return scores


def _precision_recall(
    scores: dict[str, float], kind: str, right: int, flagged: int, found: int, labelled: int
) -> None:
    precision = right / flagged if flagged else math.nan
    recall = found / labelled if labelled else math.nan
    if flagged:
        scores[f"{kind}_precision"] = precision
    if labelled:
        scores[f"{kind}_recall"] = recall
    if flagged and labelled:
        both = precision + recall
        scores[f"{kind}_f1"] = 2 * precision * recall / both if both else 0.0


def scaled_sigmoid(position: float) -> float:
    """NAB's weight of a flag at ``position``: -1 at a window's start, 0 at its end, and
    past it the windows' widths after its end (-1 beyond three widths)."""
    if position > 3.0:
        return -1.0
    return 2 / (1 + math.exp(5 * position)) - 1


#: A flag at a window's first row: NAB divides by it, so that one is worth ``A_TP``.
MAX_TRUE_POSITIVE = scaled_sigmoid(-1.0)


def nab_raw_score(
    flags: np.ndarray, windows: list[tuple[int, int]], profile: NabProfile = NAB_STANDARD
) -> float:
    """NAB's unnormalized score of one series' flags against its windows."""
    score = 0.0
    window_of = np.full(len(flags), -1)
    for number, (start, end) in enumerate(windows):
        window_of[start : end + 1] = number
    detected = np.zeros(len(windows), dtype=bool)
    previous = -1
    for row in np.flatnonzero(flags):
        number = int(window_of[row])
        while previous + 1 < len(windows) and windows[previous + 1][1] < row:
            previous += 1
        if number >= 0:
            if not detected[number]:
                start, end = windows[number]
                position = -(end - row + 1) / (end - start + 1)
                score += profile.true_positive * scaled_sigmoid(position) / MAX_TRUE_POSITIVE
                detected[number] = True
        elif previous >= 0:
            start, end = windows[previous]
            position = (row - end) / max(end - start, 1)
            score += profile.false_positive * scaled_sigmoid(position)
        else:
            score -= profile.false_positive
    score -= profile.false_negative * int((~detected).sum())
    return score
