"""Rows grouped by series in one pass: the same rows, in order, as a mask per series."""

from __future__ import annotations

import numpy as np

from pipeline.scoring.series import rows_by_series


def test_each_series_rows_in_order_series_by_first_appearance() -> None:
    keys = np.array(["b", "a", "b", None, "c", "a", None], dtype=object)
    found = rows_by_series(keys)
    assert list(found) == ["b", "a", None, "c"]
    assert {k: v.tolist() for k, v in found.items()} == {
        "b": [0, 2],
        "a": [1, 5],
        None: [3, 6],
        "c": [4],
    }
    numbers = np.random.default_rng(3).integers(0, 50, 2000)
    for key, rows in rows_by_series(numbers).items():
        assert rows.tolist() == np.flatnonzero(numbers == key).tolist()
    assert rows_by_series(np.array([])) == {}
