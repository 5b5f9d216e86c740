"""Labelled windows label a set's rows: every series' inside a window without one, the
named series' alone inside one that names it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.store.windows import LabelledWindow, with_window_labels
from pipeline.versions.importing import LABEL_COLUMN


def test_a_window_naming_a_series_labels_that_series_alone(tmp_path: Path) -> None:
    meters = pd.concat(
        [load_series(seed=n, hours=48).assign(meter=f"m{n}") for n in range(2)], ignore_index=True
    )
    store = FeatureStore(Location(str(tmp_path)))
    store.put(
        "s", meters, timestamp_column="timestamp", target_column="load_kw", series_column="meter"
    )
    start = pd.Timestamp(meters["timestamp"].iloc[10])
    windows = [
        LabelledWindow(start, start + pd.Timedelta(hours=2), "m1"),
        LabelledWindow(start + pd.Timedelta(hours=20), start + pd.Timedelta(hours=20), None),
    ]
    labelled = with_window_labels(store.load("s"), windows)
    flagged = labelled.data[labelled.data[LABEL_COLUMN]]
    assert sorted(flagged["meter"]) == ["m0", "m1", "m1", "m1", "m1"]
