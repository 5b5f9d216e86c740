"""The drift rules on numbers whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.monitoring.drift import (
    RECENT_WINDOWS,
    Reference,
    Status,
    accuracy_check,
    population_stability,
    shift_check,
    window_errors,
)

#: Test windows' MAEs: mean 10, standard deviation 2.
TEST = [8.0, 10.0, 12.0, 10.0, 8.0, 12.0]


def test_the_test_part_is_cut_into_windows_of_one_forecast() -> None:
    stamps = pd.date_range("2026-01-01", periods=6, freq="h").to_numpy()
    timestamps = np.concatenate([stamps, stamps])  # two series
    actual = np.zeros(12)
    predicted = np.array([1, 1, 1, 3, 3, 3, 1, 1, 1, 5, 5, 5], dtype=float)
    assert list(window_errors(timestamps, actual, predicted, 3)) == [1.0, 4.0]


def test_live_errors_within_chance_are_ok() -> None:
    check = accuracy_check([40.0, 11.0, 12.0], TEST)  # the oldest is out of the window
    assert check is not None
    assert check.status is Status.OK
    assert check.test_mae == pytest.approx(10.0)
    assert check.live_mae == pytest.approx(11.5)
    standard_error = np.std(TEST, ddof=1) / np.sqrt(2)
    assert check.z == pytest.approx(1.5 / standard_error)
    assert check.band == pytest.approx((10 - 2 * standard_error, 10 + 2 * standard_error))


def test_only_the_most_recent_windows_count() -> None:
    drifted = accuracy_check([30.0] * 10 + [9.0] * RECENT_WINDOWS, TEST)
    assert drifted is not None
    assert (drifted.status, drifted.windows) == (Status.OK, RECENT_WINDOWS)


def test_a_level_shift_drifts_within_two_windows() -> None:
    first_day = accuracy_check([10.0, 10.0, 30.0], TEST)
    assert first_day is not None
    assert first_day.status is Status.DRIFTED  # z (20 - 10) / (2 / sqrt 2) = 7.1
    assert first_day.ratio == pytest.approx(2.0)
    blip = accuracy_check([10.0, 10.0, 15.0], TEST)  # a holiday's 1.5x day
    assert blip is not None
    assert blip.status is Status.OK


def test_between_the_bands_is_watch_and_a_tiny_sure_difference_is_not_drift() -> None:
    watch = accuracy_check([13.0, 13.0], TEST)
    assert watch is not None
    assert watch.status is Status.WATCH  # z 3 / (2 / sqrt 2) = 2.1
    steady = [10.0, 10.01] * 50  # windows that hardly vary
    tiny = accuracy_check([10.3, 10.3, 10.3], steady)
    assert tiny is not None
    assert tiny.z is not None
    assert tiny.z > 3
    assert tiny.status is Status.OK  # 3 % worse: not worth a retrain


def test_too_little_to_judge() -> None:
    assert accuracy_check([], TEST) is None
    assert accuracy_check([10.0], [10.0]) is None


def test_population_stability_of_a_shifted_column() -> None:
    rng = np.random.default_rng(0)
    training = rng.normal(100, 10, 20_000)
    reference = Reference.of(training)
    assert reference is not None
    assert len(reference.shares) == 10
    assert reference.shares == pytest.approx([0.1] * 10, abs=1e-3)
    same = shift_check(reference, rng.normal(100, 10, 2_000))
    assert same.status is Status.OK
    assert same.psi < 0.02
    shifted = shift_check(reference, rng.normal(120, 10, 2_000))  # +20 %
    assert shifted.status is Status.DRIFTED
    assert shifted.psi > 1
    assert shift_check(reference, rng.normal(120, 10, 10)).status is Status.OK  # too few
    assert Reference.from_dict(reference.as_dict()) == reference


def test_psi_by_its_formula() -> None:
    reference = Reference(edges=(0.0,), shares=(0.5, 0.5))
    recent = np.array([-1.0] * 20 + [1.0] * 80)
    expected = (0.2 - 0.5) * np.log(0.2 / 0.5) + (0.8 - 0.5) * np.log(0.8 / 0.5)
    assert population_stability(reference, recent) == pytest.approx(expected)
    assert Reference.of(np.array([1.0, 1.0, np.nan])) is None
