"""Predicting with a registered model from raw feature-store rows.

A request carries rows of the model's feature-set columns: the timestamp, the series (if
the set has one), the covariates and the target. Rows whose target is null are the future
to forecast; rows with a target are the history the lags read (and, for anomaly models,
the observations to score). The features are built by the same code as in training, so
serving and training cannot drift apart. Every row past its series' warm-up (the longest
lag) gets a prediction, with the model's quantiles and, on request, each feature's
contribution; a request where no row does is refused with the history it lacks. Features
whose history the request leaves out (last year's values, a full rolling window) are
missing values to the model, as at the start of its training data: the forecast equals
the evaluated one when the rows reach ``history_needed`` steps back. The quantiles follow
the misses of the request's own forecasts of its history after the model's test start
(``pipeline.scoring.adaptation``): they equal the evaluated ones when the history also
reaches the model's adaptation window (28 days) before each forecast's origin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from domain.errors import InvalidRequest
from pipeline.features.build import (
    YEARLY_HISTORY_DAYS,
    FeatureMatrix,
    FeatureSpec,
    build_features,
)
from pipeline.features.steps import DAY, DST_SHIFT, is_calendar, regular
from pipeline.models.artifacts import ModelArtifact, out_of_sample_from
from pipeline.scoring.detector import detector_of
from pipeline.scoring.events import AnomalyEvent
from pipeline.scoring.intervals import quantile_key
from pipeline.store.feature_store import FeatureFrame, FeatureSetSchema

FIELD = "rows"


@dataclass(frozen=True)
class Explanation:
    """Each feature's contribution to one forecast; with ``expected_value`` (the model's
    average forecast) they sum to the forecast."""

    expected_value: float
    contributions: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    timestamp: pd.Timestamp
    series: str | None
    predicted: float
    actual: float | None
    anomaly: bool | None
    anomaly_score: float | None
    quantiles: dict[str, float] | None = None
    explanation: Explanation | None = None


@dataclass(frozen=True)
class Predictions:
    rows: list[Prediction]
    events: list[AnomalyEvent] | None  # anomaly models only


def history_needed(spec: FeatureSpec) -> int:
    """Consecutive earlier steps a row needs for every feature to be what training saw:
    the longest lag, the horizon plus the longest rolling window, or (for models reading
    last year's values) a year and a week."""
    steps = max(spec.warm_up, spec.horizon + max(spec.window_lengths) - 1, spec.year_lag or 0)
    if spec.yearly:
        year = pd.Timedelta(days=YEARLY_HISTORY_DAYS + 7)
        steps = max(steps, math.ceil(year / spec.step))
    return steps


def predict_rows(
    artifact: ModelArtifact, rows: Sequence[Mapping[str, Any]], explain: bool = False
) -> Predictions:
    """Predictions for every row past its warm-up and at most a horizon after its series'
    last known target, in time (then series) order; for an anomaly model, with the events
    its alarms make (``pipeline.scoring.detector``), each row's score read against the
    misses of the request's earlier rows.

    Raises:
        InvalidRequest: wrong or missing columns, nulls/NaNs where values are needed,
            unparseable timestamps, a series the model does not know, or too little
            history for any row.
    """
    metadata = artifact.metadata
    schema = replace(FeatureSetSchema(**metadata["feature_schema"]), label_column=None)
    spec = artifact.feature_spec
    frame = _frame(schema, rows, spec.step)
    _known_series(frame, schema, artifact.series or spec.series)
    matrix = within_reach(
        build_features(
            FeatureFrame(schema, frame), spec, require_target=False, columns=metadata["features"]
        ),
        frame,
        schema,
        spec,
    )
    if len(matrix.target) == 0:
        need = spec.warm_up
        raise InvalidRequest(
            FIELD,
            f"missing history for the lags: a row to predict needs the {need} steps before it "
            f"(horizon {spec.horizon}, {spec.season} steps per day) in the same series, and "
            f"{history_needed(spec)} for every feature; got {len(frame)} rows",
        )
    features = matrix.features.to_numpy()
    _finite_features(features, matrix)
    predicted = artifact.predict(features)
    calibration = artifact.calibration
    bounds = artifact.predict_quantiles(features, predicted)
    actual = matrix.target
    if bounds is not None:
        bounds = artifact.served_quantiles(
            predicted,
            bounds,
            actual,
            matrix.timestamps.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]"),
            None if matrix.series is None else matrix.series.to_numpy(dtype=str),
        )
    explanations = _explanations(artifact, features) if explain else None
    series = matrix.series.to_numpy(dtype=str) if matrix.series is not None else None
    detector = detector_of(metadata)
    detection = None
    if detector is not None:
        fitted = (matrix.timestamps < out_of_sample_from(metadata)).to_numpy()
        stamps = pd.DatetimeIndex(matrix.timestamps)
        detection = detector.detect(
            actual, predicted, stamps, series, in_sample=fitted, step=spec.step
        )
    flags = None if detection is None else detection.events.flags
    scores = None if detection is None else detection.scores
    predictions = [
        Prediction(
            timestamp=pd.Timestamp(matrix.timestamps.iloc[i]),
            series=None if series is None else str(series[i]),
            predicted=float(predicted[i]),
            actual=None if math.isnan(actual[i]) else float(actual[i]),
            anomaly=None if flags is None or math.isnan(actual[i]) else bool(flags[i]),
            anomaly_score=(None if scores is None or math.isnan(actual[i]) else float(scores[i])),
            quantiles=None
            if bounds is None or calibration is None
            else {
                quantile_key(q): float(v)
                for q, v in zip(calibration.quantiles, bounds[i], strict=True)
            },
            explanation=None if explanations is None else explanations[i],
        )
        for i in range(len(actual))
    ]
    return Predictions(predictions, None if detection is None else detection.events.events)


def within_reach(
    matrix: FeatureMatrix, frame: pd.DataFrame, schema: FeatureSetSchema, spec: FeatureSpec
) -> FeatureMatrix:
    """The rows no more than a horizon after their series' last known target: further out,
    the horizon's own lag is the unknown future. Calendar steps (28 to 31 days) are
    counted in rows, which step evenly (``_no_gaps``): nine months of 31 days with slack
    had reached a tenth month. Steps of days reach an hour further: a local midnight is
    25 hours after the one before across a daylight-saving change."""
    ts, target = schema.timestamp_column, schema.target_column
    known = frame[frame[target].notna()]
    stamps = known[ts]
    reach = spec.horizon * spec.step + (DST_SHIFT if spec.step >= DAY else pd.Timedelta(0))
    if not len(stamps):
        keep = np.zeros(len(matrix.target), dtype=bool)
    elif is_calendar(spec.step):
        column = schema.series_column
        keys = frame[column].astype(str) if column else pd.Series("", index=frame.index)
        limits = {
            key: _rows_after_last_known(group.sort_values(ts), ts, target, spec.horizon)
            for key, group in frame.groupby(keys, sort=False)
        }
        series = matrix.series if column and matrix.series is not None else None
        limit = series.astype(str).map(limits) if series is not None else limits[""]
        keep = (matrix.timestamps <= limit).to_numpy()
    elif schema.series_column and matrix.series is not None:
        last = stamps.groupby(known[schema.series_column]).max()
        limit = matrix.series.map(last + reach)
        keep = (matrix.timestamps <= limit).to_numpy()
    else:
        keep = (matrix.timestamps <= stamps.max() + reach).to_numpy()
    return FeatureMatrix(
        features=matrix.features[keep].reset_index(drop=True),
        target=matrix.target[keep],
        timestamps=matrix.timestamps[keep].reset_index(drop=True),
        series=None if matrix.series is None else matrix.series[keep].reset_index(drop=True),
        labels=None if matrix.labels is None else matrix.labels[keep],
        seasonal_naive=matrix.seasonal_naive[keep],
        season=matrix.season,
    )


def _known_series(
    frame: pd.DataFrame, schema: FeatureSetSchema, known: tuple[str, ...] | None
) -> None:
    """Raises InvalidRequest for a series the model has no forecasts for (it was not
    trained on it; a per-series model: it has no model of its own for it)."""
    if schema.series_column is None or known is None:
        return
    unknown = ~frame[schema.series_column].isin(known)
    if unknown.any():
        row = int(frame.index[unknown.to_numpy()][0])
        raise InvalidRequest(
            f"{FIELD}.{row}.{schema.series_column}",
            f"unknown series {frame[schema.series_column][row]!r}: the model forecasts "
            f"{len(known)} series (e.g. {list(known[:3])})",
        )


def _explanations(artifact: ModelArtifact, features: np.ndarray) -> list[Explanation]:
    names = artifact.metadata["features"]
    table = artifact.contributions(features)
    return [
        Explanation(
            expected_value=float(row[-1]),
            contributions={name: float(v) for name, v in zip(names, row[:-1], strict=True)},
        )
        for row in table
    ]


def _finite_features(features: np.ndarray, matrix: FeatureMatrix) -> None:
    """Values too large for the features built from them (a rolling standard deviation
    squares them) are refused: the model reads finite numbers or none."""
    overflowed = np.flatnonzero(np.isinf(features).any(axis=1))
    if overflowed.size:
        at = int(overflowed[0])
        where = pd.Timestamp(matrix.timestamps.iloc[at]).isoformat()
        if matrix.series is not None:
            where += f" of series {matrix.series.iloc[at]!r}"
        raise InvalidRequest(
            FIELD, f"values too large: the features of the row at {where} overflow"
        )


def _frame(
    schema: FeatureSetSchema, rows: Sequence[Mapping[str, Any]], step: pd.Timedelta
) -> pd.DataFrame:
    required = [c for c in (schema.timestamp_column, schema.series_column) if c]
    required += [schema.target_column, *schema.covariates]
    frame = pd.DataFrame(list(rows))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InvalidRequest(FIELD, f"missing columns {missing}; every row needs {required}")
    unknown = sorted(set(frame.columns) - set(required))
    if unknown:
        raise InvalidRequest(FIELD, f"unknown columns {unknown}; the model reads {required}")
    needed = [c for c in (schema.timestamp_column, schema.series_column) if c]
    for name in needed:
        _no_nulls(frame, name)
    stamps = schema.timestamp_column
    try:
        frame[stamps] = pd.to_datetime(frame[stamps], utc=True).dt.as_unit("ns")
    except (ValueError, TypeError, OverflowError) as exc:  # OutOfBoundsDatetime: a ValueError
        raise InvalidRequest(
            f"{FIELD}.{stamps}", f"bad timestamp (times run from 1677 to 2262): {exc}"
        ) from exc
    if schema.series_column:
        frame[schema.series_column] = frame[schema.series_column].astype(str)
    flags = np.flatnonzero(frame[schema.target_column].map(lambda v: isinstance(v, bool)))
    if flags.size:
        at = f"{FIELD}.{int(flags[0])}.{schema.target_column}"
        raise InvalidRequest(at, f"{schema.target_column} is a number, not true or false")
    for name in [schema.target_column, *schema.covariates]:
        try:
            frame[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidRequest(f"{FIELD}.{name}", f"{name} must be numeric: {exc}") from exc
        infinite = np.flatnonzero(np.isinf(frame[name].to_numpy()))
        if infinite.size:
            raise InvalidRequest(f"{FIELD}.{int(infinite[0])}.{name}", f"{name} is infinite")
    keys = [c for c in (schema.series_column, schema.timestamp_column) if c]
    if frame.duplicated(keys).any():
        raise InvalidRequest(FIELD, f"duplicate rows for the same {' and '.join(keys)}")
    frame = frame.sort_values(keys, kind="stable")
    _no_gaps(frame, schema, step)
    return frame


def _rows_after_last_known(group: pd.DataFrame, ts: str, target: str, horizon: int) -> pd.Timestamp:
    """The time of a series' row ``horizon`` rows after its last known target (its last
    row if it ends sooner; before its first, with no target known)."""
    known = np.flatnonzero(group[target].notna().to_numpy())
    stamps = pd.DatetimeIndex(group[ts])
    if not known.size:
        return stamps[0] - pd.Timedelta(days=1)
    return stamps[min(int(known[-1]) + horizon, len(stamps) - 1)]


def _no_nulls(frame: pd.DataFrame, name: str) -> None:
    nulls = np.flatnonzero(frame[name].isna().to_numpy())
    if nulls.size:
        raise InvalidRequest(f"{FIELD}.{int(nulls[0])}.{name}", f"{name} is null or NaN")


def _no_gaps(frame: pd.DataFrame, schema: FeatureSetSchema, step: pd.Timedelta) -> None:
    """Timestamps step evenly and null targets only trail a series (the future): a request
    with a hole would be forecast from less history than it seems to give."""
    groups = frame.groupby(schema.series_column) if schema.series_column else [(None, frame)]
    for _, group in groups:
        uneven = np.flatnonzero(~regular(group[schema.timestamp_column].diff().iloc[1:], step))
        if uneven.size:
            row = int(group.index[uneven[0] + 1])
            raise InvalidRequest(
                f"{FIELD}.{row}.{schema.timestamp_column}",
                f"timestamps must step evenly by {step} within a series, as in training",
            )
        known = group[schema.target_column].notna().to_numpy()
        if not known.any():
            continue
        last_known = int(np.flatnonzero(known)[-1])
        holes = np.flatnonzero(~known[:last_known])
        if holes.size:
            row = int(group.index[holes[0]])
            raise InvalidRequest(
                f"{FIELD}.{row}.{schema.target_column}",
                f"{schema.target_column} is null inside the history (only the last rows of a "
                "series, the ones to forecast, may leave it null)",
            )
