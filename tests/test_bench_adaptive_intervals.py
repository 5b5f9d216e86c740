"""The offline adaptive-interval benchmark reads no actual its rows could not have known."""

from __future__ import annotations

import numpy as np

from bench.adaptive_intervals import adapted

POINT = np.zeros(12)
BOUNDS = np.column_stack([np.full(12, -1.0), POINT, np.full(12, 1.0)])


def test_rate_zero_is_the_static_interval() -> None:
    actual = np.linspace(-3, 3, 12)
    assert np.array_equal(adapted(actual, POINT, BOUNDS, 3, 0.0), BOUNDS)


def test_misses_widen_the_rows_a_delay_later_and_no_earlier_one() -> None:
    missing = np.full(12, 1e6)  # every actual outside the interval
    scaled = adapted(missing, POINT, BOUNDS, 3, 0.5)
    half_widths = scaled[:, 2] - POINT
    assert np.array_equal(half_widths[:3], np.ones(3))  # nothing known yet
    assert (np.diff(half_widths[3:]) > 0).all()  # each known miss widens it
    assert half_widths[3] == np.exp(0.5 * 0.8)
    inside = np.zeros(12)
    narrowed = adapted(inside, POINT, BOUNDS, 3, 0.5)
    assert (np.diff(narrowed[3:, 2]) < 0).all()  # each known hit narrows it
    # A row's interval does not depend on the actuals of its own or the next delay rows.
    later = missing.copy()
    later[6:] = 0.0
    assert np.array_equal(adapted(later, POINT, BOUNDS, 3, 0.5)[:9], scaled[:9])
