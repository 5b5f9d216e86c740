"""Detections: an anomaly model's scores, flags and events over a window of a feature set.

A detection is planned as a batch forecast is (``pipeline.forecasting.batch``): the set's
key columns alone say which series go in which chunk, and each chunk reads only its own
rows, from the window's start minus what the model's features (``history_needed``) and
its trailing scale (``calibration.window`` steps) look back, to the window's end. Each
chunk is then scored as ``predict_rows`` scores a request of the same rows
(``pipeline.scoring.detector``), so a window's scores and flags are the ones a request
with the same history gets; the rows before the window are only history.

The window runs from ``start`` (inclusive) to ``end`` (exclusive); its events are those
that overlap it. An event that began before the window keeps its start when that lies
within the rows the chunk reads before it (the suppression after an event, say); an
event older than that, or one the reach cuts, starts where the rows read do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from domain.errors import InvalidRequest
from pipeline.features.build import build_features
from pipeline.forecasting.batch import (
    CHUNK_SERIES,
    ForecastChunk,
    SeriesHistory,
    model_columns,
)
from pipeline.forecasting.predict import history_needed, within_reach
from pipeline.forecasting.request_checks import (
    ONE_SERIES,
    chosen_series,
    compatible_schema,
    set_spans,
)
from pipeline.models.artifacts import ModelArtifact, feature_spec_of, out_of_sample_from
from pipeline.scoring.detector import AnomalyDetector, detector_of
from pipeline.scoring.events import AnomalyEvent
from pipeline.stages import chunks
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureFrame, FeatureStore
from pipeline.store.windows import with_window_labels

#: A detection's files, in its forecast directory (``batch.forecast_directory``).
DETECTION_FILE = "detection.parquet"
EVENTS_FILE = "events.parquet"
#: The output's columns (and ``label`` when the set has a label column).
COLUMNS = ("series", "timestamp", "actual", "predicted", "anomaly_score", "anomaly")
#: Rows a chunk task scores at most (by default): bounds a task's memory, and spreads a
#: long window of few series over the cluster's CPUs.
CHUNK_ROWS = 1_000_000
EVENT_COLUMNS = ("series", "start", "end", "peak_at", "peak_score", "severity", "rows")


@dataclass(frozen=True)
class Window:
    """The rows a detection scores: from ``start`` (inclusive) to ``end`` (exclusive), UTC."""

    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def of(cls, start: datetime, end: datetime) -> Window:
        return cls(_utc(start), _utc(end))


@dataclass(frozen=True)
class Detected:
    """One chunk's detection: its window's rows and the events overlapping the window."""

    rows: pd.DataFrame
    events: pd.DataFrame


def detector_or_refuse(metadata: dict[str, Any]) -> AnomalyDetector:
    """Raises: InvalidRequest on ``model_type`` (a forecasting model has no detector)."""
    detector = detector_of(metadata)
    if detector is None:
        raise InvalidRequest(
            "model_type",
            "a forecasting model has no anomaly detector: detect with an anomaly model",
        )
    return detector


def plan_detection(
    store: FeatureStore,
    metadata: dict[str, Any],
    feature_set: str,
    series: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
    size: int | None = None,
    version: str | None = None,
) -> tuple[Window, list[ForecastChunk]]:
    """Check a detection against the model and the set, resolve its window (by default
    the set's whole span) and split it into chunks of at most ``size`` series (by default
    as many as make ``CHUNK_ROWS`` rows, since every row of the window is scored), each
    with the rows its scores read. Only the key and target columns are read.

    Raises:
        InvalidRequest: on ``model_type``, ``feature_set`` or ``series`` (as a batch
            forecast), or ``start``/``end`` (end not after start, or outside the set).
    """
    detector = detector_or_refuse(metadata)
    spec = feature_spec_of(metadata)
    schema = compatible_schema(store, metadata, feature_set, spec.horizon, version)
    spans = set_spans(store, feature_set, schema, series)
    chosen = chosen_series(metadata, schema, spans, series)
    selected = spans.loc[list(chosen)]
    first, last = _utc(selected["first"].min()), _utc(selected["last"].max())
    window = _window(first, last, spec.step, start, end)
    scale_steps = detector.calibration.window if detector.calibration is not None else 0
    reach = (history_needed(spec) + scale_steps + detector.suppress) * spec.step
    if size is None:
        size = series_per_chunk(round((window.end - window.start + reach) / spec.step))
    plan = [
        ForecastChunk(
            feature_set=feature_set,
            version=schema.pinned_version,
            series=part,
            single=schema.series_column is None,
            start=window.start - reach,
            end=window.end,
        )
        for part in chunks(sorted(chosen), size)  # the file's order: by series
    ]
    return window, plan


def series_per_chunk(steps: int) -> int:
    """Series of ``steps`` rows each that make ``CHUNK_ROWS`` rows (1 to ``CHUNK_SERIES``)."""
    return max(1, min(CHUNK_SERIES, CHUNK_ROWS // max(steps, 1)))


def check_detection(
    store: FeatureStore,
    metadata: dict[str, Any],
    feature_set: str,
    series: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
) -> Window:
    """A detection's resolved window, once its plan would run (``plan_detection``).

    Raises:
        InvalidRequest: as ``plan_detection``.
    """
    window, _ = plan_detection(store, metadata, feature_set, series, start, end)
    return window


def read_window(
    store: FeatureStore, metadata: dict[str, Any], chunk: ForecastChunk
) -> SeriesHistory:
    """A chunk's rows under the model's columns, with the set's labels if it has them (a
    column of its own, or its uploaded windows: ``pipeline.store.windows``)."""
    trained = metadata["feature_schema"]
    label = store.schema(chunk.feature_set, chunk.version).label_column
    frame = store.load(
        chunk.feature_set,
        chunk.end,
        version=chunk.version,
        start=chunk.start,
        series=None if chunk.single else chunk.series,
        columns=[trained["target_column"], *trained["covariates"], *([label] if label else [])],
    )
    frame = with_window_labels(frame, store.windows(chunk.feature_set))
    return model_columns(metadata, frame, chunk, label=True)


def detect_chunk(artifact: ModelArtifact, history: SeriesHistory, window: Window) -> Detected:
    """The window's rows with a known actual (by series, then time) and the events that
    overlap the window, scored over all of ``history`` as ``predict_rows`` scores it."""
    detector = detector_or_refuse(artifact.metadata)
    schema, spec = history.schema, artifact.feature_spec
    data = history.data.assign(
        **{schema.timestamp_column: pd.to_datetime(history.data[schema.timestamp_column], utc=True)}
    )
    matrix = within_reach(
        build_features(
            FeatureFrame(schema, data),
            spec,
            require_target=False,
            columns=artifact.metadata["features"],
        ),
        data,
        schema,
        spec,
    )
    assert matrix.series is not None  # the history always has a series key
    series = matrix.series.to_numpy(dtype=str)
    stamps = matrix.timestamps.reset_index(drop=True)
    predicted = artifact.predict(matrix.features.to_numpy()) if len(stamps) else np.empty(0)
    fitted = (stamps < _utc(out_of_sample_from(artifact.metadata))).to_numpy()
    detection = detector.detect(
        matrix.target, predicted, pd.DatetimeIndex(stamps), series, in_sample=fitted, step=spec.step
    )
    rows = pd.DataFrame(
        {
            "series": None if history.single else series,
            "timestamp": stamps,
            "actual": matrix.target,
            "predicted": predicted,
            "anomaly_score": detection.scores,
            "anomaly": detection.events.flags,
        }
    )
    if matrix.labels is not None:
        rows["label"] = matrix.labels
    inside = ((stamps >= window.start) & (stamps < window.end)).to_numpy()
    rows = rows[inside & ~np.isnan(matrix.target)]
    events = [e for e in detection.events.events if _overlaps(e, window)]
    return Detected(
        rows.sort_values(["series", "timestamp"], kind="stable").reset_index(drop=True),
        events_frame(events, history.single),
    )


def events_frame(events: Sequence[AnomalyEvent], single: bool) -> pd.DataFrame:
    """Events as the stored table: one row each, by start then series."""
    frame = pd.DataFrame(
        {
            "series": [None if single else e.series for e in events],
            "start": pd.to_datetime([e.start for e in events], utc=True),
            "end": pd.to_datetime([e.end for e in events], utc=True),
            "peak_at": pd.to_datetime([e.peak_at for e in events], utc=True),
            "peak_score": np.array([e.peak_score for e in events], dtype=float),
            "severity": pd.Series([e.severity for e in events], dtype=object),
            "rows": np.array([e.rows for e in events], dtype="int64"),
        },
        columns=list(EVENT_COLUMNS),
    )
    return frame.astype({"series": object})


def gathered_events(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The chunks' events as one table, by start then series."""
    events = pd.concat(parts, ignore_index=True) if parts else events_frame([], True)
    ordered = events.assign(_key=events["series"].fillna(ONE_SERIES))
    ordered = ordered.sort_values(["start", "_key"], kind="stable")
    return ordered.drop(columns="_key").reset_index(drop=True)


def events_location(rows_uri: str) -> Location:
    """The events file next to a detection's rows at ``rows_uri`` (a path or a URI)."""
    base, sep, query = rows_uri.partition("?")
    return Location(base.rsplit("/", 1)[0] + sep + query) / EVENTS_FILE


def _overlaps(event: AnomalyEvent, window: Window) -> bool:
    return _utc(event.end) >= window.start and _utc(event.start) < window.end


def _window(
    first: pd.Timestamp,
    last: pd.Timestamp,
    step: pd.Timedelta,
    start: datetime | None,
    end: datetime | None,
) -> Window:
    """The window asked for, within the set's span ``first`` .. ``last`` (its default).

    Raises:
        InvalidRequest: on ``end`` (not after ``start``, or before the set) or ``start``
            (after the set).
    """
    begin = first if start is None else _utc(start)
    until = last + step if end is None else _utc(end)
    if begin > last:
        raise InvalidRequest(
            "start", f"the set's series end at {last.isoformat()}: the window starts after it"
        )
    if until <= first:
        raise InvalidRequest(
            "end", f"the set's series start at {first.isoformat()}: the window ends before it"
        )
    if until <= begin:
        raise InvalidRequest("end", f"the window must end after it starts ({begin.isoformat()})")
    return Window(max(begin, first), min(until, last + step))


def _utc(stamp: datetime | pd.Timestamp) -> pd.Timestamp:
    """``stamp`` in UTC (a naive one is taken as UTC)."""
    value = pd.Timestamp(stamp)
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
