"""Labelled anomaly windows of a feature set, uploaded apart from its rows.

A team often knows its incidents as time ranges (a ticket's start and end) rather than as
a column of 0/1 labels. The ranges are kept beside the set, ``<set>/anomaly_windows.json``,
for every version alike (they label times, not files); an upload replaces the list. A
set's rows are labelled from them (``with_window_labels``) where it has no ``is_anomaly``
column of its own, so an anomaly job is scored against them as against the column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from domain.errors import InvalidRequest
from pipeline.storage import Location
from pipeline.versions.importing import LABEL_COLUMN
from pipeline.versions.schema import FeatureFrame, FeatureSetSchema

WINDOWS_FILE = "anomaly_windows.json"
FIELD = "windows"


@dataclass(frozen=True)
class LabelledWindow:
    """Rows from ``start`` to ``end`` (both inclusive) of ``series`` (every series when
    None) are anomalous."""

    start: pd.Timestamp
    end: pd.Timestamp
    series: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}


def checked_windows(
    windows: Sequence[LabelledWindow], schema: FeatureSetSchema, known_series: set[str] | None
) -> list[LabelledWindow]:
    """The windows in UTC, in order of start.

    Raises:
        InvalidRequest: a window ending before it starts, lying wholly before the set's
            first row or after its last one (it would label nothing), or naming a series
            the set does not have (or any series, for a set of one).
    """
    first, last = _utc(pd.Timestamp(schema.start)), _utc(pd.Timestamp(schema.end))
    checked = []
    for number, window in enumerate(windows):
        start, end = _utc(window.start), _utc(window.end)
        if end < start:
            raise InvalidRequest(f"{FIELD}.{number}.end", "end is before start")
        if end < first or start > last:
            raise InvalidRequest(
                f"{FIELD}.{number}.start",
                f"the window holds none of the set's rows ({first.isoformat()} to "
                f"{last.isoformat()})",
            )
        if window.series is not None:
            if schema.series_column is None or known_series is None:
                raise InvalidRequest(
                    f"{FIELD}.{number}.series", "the set has one series: leave series out"
                )
            if window.series not in known_series:
                raise InvalidRequest(
                    f"{FIELD}.{number}.series", f"unknown series {window.series!r}"
                )
        checked.append(LabelledWindow(start, end, window.series))
    return sorted(checked, key=lambda w: (w.start, w.series or ""))


def write_windows(directory: Location, windows: Sequence[LabelledWindow]) -> None:
    (directory / WINDOWS_FILE).write_text(json.dumps([w.as_dict() for w in windows]))


def read_windows(directory: Location) -> list[LabelledWindow]:
    path = directory / WINDOWS_FILE
    if not path.is_file():
        return []
    return [
        LabelledWindow(pd.Timestamp(w["start"]), pd.Timestamp(w["end"]), w["series"])
        for w in json.loads(path.read_text())
    ]


def with_window_labels(frame: FeatureFrame, windows: Sequence[LabelledWindow]) -> FeatureFrame:
    """The frame with an ``is_anomaly`` column from the windows, unless it has labels of
    its own or there are no windows."""
    schema = frame.schema
    if schema.label_column is not None or not windows:
        return frame
    stamps = pd.to_datetime(frame.data[schema.timestamp_column], utc=True)
    names = None if schema.series_column is None else frame.data[schema.series_column]
    labels = np.zeros(len(frame.data), dtype=bool)
    for window in windows:
        inside = ((stamps >= window.start) & (stamps <= window.end)).to_numpy()
        if window.series is not None and names is not None:
            inside = inside & (names == window.series).to_numpy()  # to_numpy: read-only
        labels |= inside
    data = frame.data.assign(**{LABEL_COLUMN: labels})
    return FeatureFrame(replace(schema, label_column=LABEL_COLUMN), data)


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
