"""Batch forecasts: the next ``horizon`` steps of many series from a feature set's history.

Each series is forecast from its own origin, the timestamp of its last known target: the
rows ``origin + 1 .. origin + horizon`` steps are built by the training feature code
(``pipeline.features.build``) from the history before them, as ``predict_rows`` does for a
request. A model trained for horizon ``h`` reads lags of at least ``h`` steps, so it can
forecast at most ``h`` steps past the origin; asking further is refused.

Covariates of the future rows are taken from the feature set where it has them (rows past
a series' last target, with the target left empty: a weather forecast, say); a covariate
it lacks is carried forward from the same time of the latest day of history (seasonal
naive), since the model needs a value and that one is known at forecast time.

A forecast is planned from the set's key columns alone (``plan_forecast``): which series
go in which chunk, and the window of rows each chunk's forecasts read, from its earliest
origin minus what the model's features and its intervals' adaptation look back, to its
latest origin plus the model's horizon. Each chunk then reads its own window
(``read_chunk``) and forecasts it (``forecast_chunk``), so no process ever holds more than
one chunk's rows, and none reads the years of history before the window.

Plain functions without Ray: ``pipeline.graph`` runs the plan in a coordinator task and
each chunk as a task of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from domain.forecasts import ForecastKind
from pipeline.features.build import FeatureMatrix, FeatureSpec, build_features
from pipeline.features.steps import calendar_frequency, is_calendar, shifted
from pipeline.forecasting.predict import history_needed
from pipeline.forecasting.request_checks import (
    ONE_SERIES,
    chosen_series,
    compatible_schema,
    set_spans,
)
from pipeline.models.artifacts import (
    ModelArtifact,
    feature_spec_of,
    out_of_sample_from,
    quantile_column,
)
from pipeline.scoring.adaptation import RecentMisses
from pipeline.stages import chunks
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureFrame, FeatureSetSchema, FeatureStore

#: Where a tenant's forecasts are written under the artifacts root (``_`` cannot start a
#: model name, so it never meets a model's directory).
FORECASTS_DIR = "_forecasts"
FORECAST_FILE = "forecast.parquet"
#: Series per Ray task.
CHUNK_SERIES = 200
#: The output's columns before the quantiles.
COLUMNS = ("series", "timestamp", "predicted")


@dataclass(frozen=True)
class ForecastTask:
    """One forecast to run: what the coordinator task receives."""

    forecast_id: str
    tenant_id: str
    model_uri: str
    feature_set: str
    horizon: int
    series: tuple[str, ...] | None
    kind: ForecastKind = ForecastKind.FORECAST
    #: A detection's window (``pipeline.forecasting.detection``), resolved at its request.
    window_start: datetime | None = None
    window_end: datetime | None = None
    #: The set's version it reads (None: the current one); the runner pins it, so that
    #: retention keeps it while the forecast runs.
    version: str | None = None


@dataclass(frozen=True)
class ForecastOutcome:
    rows: int
    artifact_uri: str
    #: A detection's events.
    events: int | None = None


@dataclass(frozen=True)
class SeriesHistory:
    """The rows of the chosen series that their forecasts read, with the set's columns
    renamed to the model's (series key, timestamp, target, covariates)."""

    schema: FeatureSetSchema
    data: pd.DataFrame
    series: tuple[str, ...]
    single: bool


@dataclass(frozen=True)
class ForecastChunk:
    """One chunk's share of a forecast: its series (``ONE_SERIES`` alone for a set of
    one) and the rows of the pinned version their forecasts read, from ``start``
    (inclusive) to ``end`` (exclusive)."""

    feature_set: str
    version: str
    series: tuple[str, ...]
    single: bool
    start: pd.Timestamp
    end: pd.Timestamp


def check_request(
    store: FeatureStore,
    metadata: dict[str, Any],
    feature_set: str,
    horizon: int,
    series: Sequence[str] | None,
) -> None:
    """Check a request as its forecast's plan does (``plan_forecast``), without holding
    the set's history.

    Raises:
        InvalidRequest: as ``plan_forecast``.
    """
    plan_forecast(store, metadata, feature_set, horizon, series)


def plan_forecast(
    store: FeatureStore,
    metadata: dict[str, Any],
    feature_set: str,
    horizon: int,
    series: Sequence[str] | None,
    size: int = CHUNK_SERIES,
    version: str | None = None,
) -> list[ForecastChunk]:
    """Check the request against the model and the set, and split it into chunks of at
    most ``size`` series, each with the window of rows its forecasts read. Only the key
    and target columns are read, a batch at a time: the plan holds no history.

    Raises:
        InvalidRequest: on ``feature_set`` (unknown or unfit for the model), ``horizon`` or
            ``series`` (``pipeline.forecasting.request_checks``).
    """
    schema = compatible_schema(store, metadata, feature_set, horizon, version)
    spans = set_spans(store, feature_set, schema, series)
    chosen = chosen_series(metadata, schema, spans, series)
    spec = feature_spec_of(metadata)
    reach = adaptation_reach(metadata) + history_needed(spec) * spec.step
    ahead = (spec.horizon + 1) * spec.step
    plan = []
    for part in chunks(sorted(chosen), size):  # the file's order: by series
        origins = spans.loc[list(part), "last"]
        plan.append(
            ForecastChunk(
                feature_set=feature_set,
                version=schema.pinned_version,
                series=part,
                single=schema.series_column is None,
                start=origins.min() - reach,
                end=origins.max() + ahead,
            )
        )
    return plan


def read_chunk(
    store: FeatureStore, metadata: dict[str, Any], chunk: ForecastChunk
) -> SeriesHistory:
    """The rows a chunk's forecasts read: its series' window of the model's columns."""
    trained = metadata["feature_schema"]
    frame = store.load(
        chunk.feature_set,
        chunk.end,
        version=chunk.version,
        start=chunk.start,
        series=None if chunk.single else chunk.series,
        columns=[trained["target_column"], *trained["covariates"]],
    )
    return _history(metadata, frame, chunk)


def load_history(
    store: FeatureStore,
    metadata: dict[str, Any],
    feature_set: str,
    horizon: int,
    series: Sequence[str] | None,
) -> SeriesHistory:
    """Plan a request as one chunk and read it: for a forecast of a few series in one
    process.

    Raises:
        InvalidRequest: as ``plan_forecast``.
    """
    [whole] = plan_forecast(store, metadata, feature_set, horizon, series, size=sys.maxsize)
    return read_chunk(store, metadata, whole)


def forecast_directory(artifacts_root: Location, tenant_id: str, forecast_id: str) -> Location:
    """Where one forecast's files are (only ``FORECAST_FILE`` so far)."""
    return artifacts_root / tenant_id / FORECASTS_DIR / forecast_id


def forecast_location(artifacts_root: Location, tenant_id: str, forecast_id: str) -> Location:
    return forecast_directory(artifacts_root, tenant_id, forecast_id) / FORECAST_FILE


def _history(metadata: dict[str, Any], frame: FeatureFrame, chunk: ForecastChunk) -> SeriesHistory:
    """A chunk's rows under the model's column names, trimmed to what its forecasts read."""
    history = model_columns(metadata, frame, chunk)
    spec = feature_spec_of(metadata)
    trimmed = _trimmed(history.data, history.schema, spec, adaptation_reach(metadata))
    return replace(history, data=trimmed)


def model_columns(
    metadata: dict[str, Any], frame: FeatureFrame, chunk: ForecastChunk, label: bool = False
) -> SeriesHistory:
    """A chunk's rows under the model's column names (series key, timestamp, target,
    covariates), and the set's label column with ``label`` when it has one."""
    trained = metadata["feature_schema"]
    schema = frame.schema
    data = frame.data
    key = schema.series_column or ONE_SERIES
    if chunk.single:
        data = data.assign(**{ONE_SERIES: ONE_SERIES})
    labelled = schema.label_column if label else None
    history = pd.DataFrame(
        {
            ONE_SERIES: data[key].astype(str),
            trained["timestamp_column"]: data[schema.timestamp_column],
            trained["target_column"]: data[schema.target_column].astype("float64"),
            **{c: data[c].astype("float64") for c in trained["covariates"]},
            **({labelled: data[labelled].fillna(False).astype(bool)} if labelled else {}),
        }
    )
    model_schema = replace(
        FeatureSetSchema(**trained),
        series_column=ONE_SERIES,
        label_column=labelled,
    )
    return SeriesHistory(model_schema, history, chunk.series, chunk.single)


def adaptation_reach(metadata: dict[str, Any]) -> pd.Timedelta:
    """How far before each origin lie the forecasts whose misses rescale the model's
    intervals (``pipeline.scoring.adaptation``): its window and a horizon; 0 for a model
    whose intervals stay as calibrated."""
    stored = metadata.get("interval_adaptation")
    if not stored:
        return pd.Timedelta(0)
    spec = feature_spec_of(metadata)
    return RecentMisses.from_dict(stored).window + spec.horizon * spec.step


def _trimmed(
    history: pd.DataFrame, schema: FeatureSetSchema, spec: FeatureSpec, recent: pd.Timedelta
) -> pd.DataFrame:
    """The ``recent`` rows before each series' origin and the last ``history_needed``
    steps before those (what their features read), and the set's own rows of its
    future."""
    ts, target = schema.timestamp_column, schema.target_column
    origins = history[history[target].notna()].groupby(ONE_SERIES)[ts].max()
    origin = history[ONE_SERIES].map(origins)
    reach = recent + history_needed(spec) * spec.step
    keep = (history[ts] > origin - reach) & (history[ts] <= origin + spec.horizon * spec.step)
    return history[keep].reset_index(drop=True)


def forecast_chunk(artifact: ModelArtifact, history: SeriesHistory, horizon: int) -> pd.DataFrame:
    """Forecasts of the next ``horizon`` steps of every series in ``history``, by series
    then time: ``series``, ``timestamp``, ``predicted`` and a ``q<level>`` column per
    quantile of the model."""
    spec = artifact.feature_spec
    schema = history.schema
    frame = _with_future(history.data, schema, spec, horizon)
    matrix = build_features(
        FeatureFrame(schema, frame.drop(columns="_future")),
        spec,
        require_target=False,
        columns=artifact.metadata["features"],
    )
    assert matrix.series is not None  # the history always has a series key
    future = frame.loc[frame["_future"], [ONE_SERIES, schema.timestamp_column]]
    wanted = pd.MultiIndex.from_frame(future)
    at = pd.MultiIndex.from_arrays([matrix.series.astype(str), matrix.timestamps])
    rows = np.flatnonzero(at.isin(wanted))
    if artifact.calibration is not None:
        since = out_of_sample_from(artifact.metadata)
        rows = np.union1d(rows, _recent_rows(matrix, adaptation_reach(artifact.metadata), since))
    features = matrix.features.iloc[rows].to_numpy()
    predicted = artifact.predict(features) if len(rows) else np.empty(0)
    series = matrix.series.iloc[rows].to_numpy(dtype=str)
    timestamps = matrix.timestamps.iloc[rows]
    out = pd.DataFrame(
        {
            "series": None if history.single else series,
            "timestamp": timestamps.to_numpy(),
            "predicted": predicted,
        }
    )
    calibration = artifact.calibration
    bounds = artifact.predict_quantiles(features, predicted) if len(rows) else None
    if calibration is not None and bounds is not None:
        utc = pd.to_datetime(timestamps, utc=True).dt.tz_convert(None)
        bounds = artifact.served_quantiles(
            predicted,
            bounds,
            matrix.target[rows],
            utc.to_numpy(dtype="datetime64[ns]"),
            series,
            wanted=np.isnan(matrix.target[rows]),
        )
        for index, quantile in enumerate(calibration.quantiles):
            out[quantile_column(quantile)] = bounds[:, index]
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    out = out[np.isnan(matrix.target[rows])] if len(rows) else out
    return out.sort_values(["series", "timestamp"], kind="stable").reset_index(drop=True)


def _recent_rows(matrix: FeatureMatrix, reach: pd.Timedelta, since: pd.Timestamp) -> np.ndarray:
    """The rows with a known target no more than ``reach`` before their series' origin,
    from ``since`` on (the model's out-of-sample rows: the others' misses do not count)."""
    assert matrix.series is not None
    known = ~np.isnan(matrix.target)
    stamps = matrix.timestamps.reset_index(drop=True).where(known)
    origins = stamps.groupby(matrix.series.to_numpy()).transform("max")
    recent = (stamps > origins - reach) & (stamps >= _like(since, stamps))
    return np.flatnonzero(known & recent.to_numpy())


def _like(stamp: pd.Timestamp, stamps: pd.Series) -> pd.Timestamp:
    """``stamp`` comparable with ``stamps``: in UTC, or naive UTC if they are naive."""
    utc = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return utc if getattr(stamps.dt, "tz", None) is not None else utc.tz_localize(None)


def _with_future(
    history: pd.DataFrame, schema: FeatureSetSchema, spec: FeatureSpec, horizon: int
) -> pd.DataFrame:
    """The history up to each origin, then a row per future step (``_future``) with the
    set's covariates where it has them, else the seasonal-naive ones."""
    ts, target = schema.timestamp_column, schema.target_column
    known = history[history[target].notna()]
    origins = known.groupby(ONE_SERIES)[ts].max()
    past = history[history[ts] <= history[ONE_SERIES].map(origins)].assign(_future=False)
    steps = np.arange(1, horizon + 1)
    frequency = calendar_frequency(known[ts]) if is_calendar(spec.step) else None  # or 28D
    future = pd.DataFrame(
        {
            ONE_SERIES: np.repeat(origins.index.to_numpy(), horizon),
            ts: shifted(
                pd.DatetimeIndex(origins).repeat(horizon),
                np.tile(steps, len(origins)),
                spec.step,
                frequency,
            ),
            target: np.nan,
            "_future": True,
        }
    )
    covariates = schema.covariates
    if covariates:
        given = history.set_index([ONE_SERIES, ts])[covariates]
        values = given.reindex(pd.MultiIndex.from_frame(future[[ONE_SERIES, ts]]))
        days = np.ceil(np.tile(steps, len(origins)) / spec.season)
        lookback = shifted(pd.DatetimeIndex(future[ts]), -days * spec.season, spec.step, frequency)
        carried = given.reindex(pd.MultiIndex.from_arrays([future[ONE_SERIES], lookback]))
        filled = values.to_numpy(dtype="float64", copy=True)
        gaps = np.isnan(filled)
        filled[gaps] = carried.to_numpy(dtype="float64")[gaps]
        future[covariates] = filled
    frame = pd.concat([past, future], ignore_index=True)
    return frame.sort_values([ONE_SERIES, ts], kind="stable").reset_index(drop=True)
