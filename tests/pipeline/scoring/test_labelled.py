"""Flags scored against labelled windows, event-wise, point-wise and as NAB does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.scoring.labelled import label_scores, nab_raw_score, runs, scaled_sigmoid

HOUR = pd.Timedelta(hours=1)


def mask(length: int, *spans: tuple[int, int]) -> np.ndarray:
    values = np.zeros(length, dtype=bool)
    for start, end in spans:
        values[start : end + 1] = True
    return values


def test_runs_are_inclusive_index_pairs() -> None:
    assert runs(mask(10, (0, 1), (5, 5), (9, 9))) == [(0, 1), (5, 5), (9, 9)]
    assert runs(np.zeros(4, dtype=bool)) == []


def test_event_scores_count_incidents_not_rows() -> None:
    labels = mask(24 * 14, (100, 110), (200, 205))
    flags = mask(24 * 14, (104, 130), (300, 300))  # one long right run, one false alarm
    scores = label_scores(flags, labels, HOUR)
    assert scores["event_precision"] == 0.5
    assert scores["event_recall"] == 0.5
    assert scores["event_f1"] == pytest.approx(0.5)
    assert scores["point_precision"] == pytest.approx(7 / 28)
    assert scores["point_recall"] == pytest.approx(7 / 17)
    quiet_weeks = (24 * 14 - 17) / (24 * 7)
    assert scores["false_alarms_per_week"] == pytest.approx(1 / quiet_weeks)


def test_series_are_scored_apart_and_pooled() -> None:
    labels = np.concatenate([mask(50, (10, 12)), mask(50, (30, 31))])
    flags = np.concatenate([mask(50, (12, 12)), mask(50, (20, 20))])
    series = np.repeat(["a", "b"], 50)
    scores = label_scores(flags, labels, HOUR, series)
    assert (scores["event_precision"], scores["event_recall"]) == (0.5, 0.5)


def test_nab_rewards_early_detection_and_charges_false_positives() -> None:
    windows = [(100, 119)]
    early, late = mask(300, (100, 100)), mask(300, (118, 118))
    assert nab_raw_score(early, windows) == pytest.approx(1.0)
    assert nab_raw_score(early, windows) > nab_raw_score(late, windows) > 0
    # Only the first flag in a window counts; one before any window costs A_FP.
    assert nab_raw_score(mask(300, (50, 50), (100, 119)), windows) == pytest.approx(1 - 0.11)
    # One after a window costs less the nearer it is: its distance over the width less 1.
    after = mask(300, (100, 100), (125, 125))
    assert nab_raw_score(after, windows) == pytest.approx(1 + 0.11 * scaled_sigmoid(6 / 19))
    assert -0.11 < 0.11 * scaled_sigmoid(6 / 19) < 0
    assert nab_raw_score(np.zeros(300, dtype=bool), windows) == -1.0
    labels = mask(300, *windows)
    assert label_scores(early, labels, HOUR)["nab_score"] == pytest.approx(100)
    assert label_scores(np.zeros(300, dtype=bool), labels, HOUR)["nab_score"] == 0


def test_scores_with_nothing_to_count_are_left_out() -> None:
    scores = label_scores(np.zeros(100, dtype=bool), np.zeros(100, dtype=bool), HOUR)
    assert scores == {"false_alarms_per_week": 0.0}
