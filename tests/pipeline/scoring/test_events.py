"""Alarms grouped into events: near alarms merge, echoes after an event are dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.scoring.events import group_events, severity, step_positions

STAMPS = pd.date_range("2024-01-01", periods=60, freq="h", tz="UTC")


def alarms_at(*rows: int, length: int = 60) -> np.ndarray:
    alarms = np.zeros(length, dtype=bool)
    alarms[list(rows)] = True
    return alarms


def test_near_alarms_are_one_event_and_echoes_are_suppressed() -> None:
    scores = np.zeros(60)
    scores[[5, 7, 9, 20, 40]] = [4.0, 6.5, 4.0, 5.0, 4.5]
    found = group_events(STAMPS, None, scores, alarms_at(5, 7, 9, 20, 40), 3.5, gap=2, suppress=12)
    assert [(e.start, e.end) for e in found.events] == [
        (pd.Timestamp(STAMPS[5]), pd.Timestamp(STAMPS[9])),
        (pd.Timestamp(STAMPS[40]), pd.Timestamp(STAMPS[40])),
    ]
    first = found.events[0]
    assert (first.peak_at, first.peak_score, first.rows) == (pd.Timestamp(STAMPS[7]), 6.5, 5)
    assert first.severity == "high"
    assert np.flatnonzero(found.flags).tolist() == [5, 6, 7, 8, 9, 40]


def test_an_alarm_a_severity_step_above_the_events_peak_is_no_echo() -> None:
    """A marginal event (peak 3.6) six hours before an incident peaking at 5.0: the
    incident had been dropped as its echo, and a weaker echo after it still is."""
    scores = np.zeros(60)
    scores[[10, 16, 17, 22]] = [3.6, 5.0, 4.8, 4.5]
    alarms = alarms_at(10, 16, 17, 22)
    found = group_events(STAMPS, None, scores, alarms, 3.5, gap=2, suppress=24)
    assert [(e.start, e.end, e.peak_score) for e in found.events] == [
        (pd.Timestamp(STAMPS[10]), pd.Timestamp(STAMPS[10]), 3.6),
        (pd.Timestamp(STAMPS[16]), pd.Timestamp(STAMPS[17]), 5.0),
    ]
    assert np.flatnonzero(found.flags).tolist() == [10, 16, 17]
    weaker = scores.copy()
    weaker[[16, 17]] = [4.5, 4.4]  # less than a step above 3.6: echoes
    echo = group_events(STAMPS, None, weaker, alarms, 3.5, gap=2, suppress=24)
    assert [e.start for e in echo.events] == [pd.Timestamp(STAMPS[10])]


def test_series_are_grouped_apart() -> None:
    series = np.array(["a", "b"] * 30)
    alarms = alarms_at(10, 11, 13)
    scores = np.where(alarms, 5.0, 0.0)
    found = group_events(STAMPS, series, scores, alarms, 4.0, gap=1, suppress=0)
    # Rows 10 and 11 are a's 6th and b's 6th: one event each; 13 is b's 7th, next to it.
    assert [(e.series, e.rows) for e in found.events] == [("a", 1), ("b", 2)]


def test_a_hole_in_the_data_counts_as_the_time_it_lasts() -> None:
    """Rows 0-9 then a day missing: alarms either side of it are a day apart, so they
    are two events, and the second is past the first's suppression."""
    stamps = pd.DatetimeIndex(STAMPS[:10].append(STAMPS[10:40] + pd.Timedelta(days=1)))
    alarms = alarms_at(8, 10, 12, length=40)
    scores = np.where(alarms, 5.0, 0.0)
    found = group_events(stamps, None, scores, alarms, 4.0, gap=3, suppress=12)
    assert [(e.start, e.end, e.rows) for e in found.events] == [
        (stamps[8], stamps[8], 1),
        (stamps[10], stamps[12], 3),
    ]
    # counted in rows, 8 and 10 would have been one event over rows 8-12


def test_steps_are_the_cadence_and_months_are_a_step_each() -> None:
    monthly = pd.date_range("2024-01-01", periods=6, freq="MS", tz="UTC").delete(3)
    assert step_positions(monthly).tolist() == [0, 1, 2, 4, 5]
    assert step_positions(STAMPS[:1]).tolist() == [0]


def test_a_stray_row_does_not_shrink_the_models_step() -> None:
    """Hourly rows and one at 00:01: read from the rows, the step would be a minute and
    the hours 60 steps apart; at the model's hour every row is a step on, and three
    alarms in a row are one event."""
    stray = pd.DatetimeIndex([STAMPS[0] + pd.Timedelta(minutes=1)])
    stamps = pd.DatetimeIndex(STAMPS[:10].append(stray).sort_values())
    assert step_positions(stamps, pd.Timedelta(hours=1)).tolist() == list(range(11))
    with_hole = pd.DatetimeIndex(STAMPS[:3].append(STAMPS[5:7]))  # two hours missing
    assert step_positions(with_hole, pd.Timedelta(hours=1)).tolist() == [0, 1, 2, 5, 6]
    assert step_positions(stamps)[2:4].tolist() == [60, 120]
    alarms = alarms_at(4, 5, 6, length=11)
    scores = np.where(alarms, 5.0, 0.0)
    found = group_events(stamps, None, scores, alarms, 4.0, 3, 24, pd.Timedelta(hours=1))
    assert [(e.start, e.end, e.rows) for e in found.events] == [(stamps[4], stamps[6], 3)]
    guessed = group_events(stamps, None, scores, alarms, 4.0, 3, 24)
    assert [e.rows for e in guessed.events] == [1, 1, 1]  # 60 "steps" apart: three events


def test_severity_steps_a_standard_deviation_past_the_threshold() -> None:
    assert [severity(s, 3.0) for s in (3.1, 4.0, 5.2)] == ["low", "medium", "high"]
