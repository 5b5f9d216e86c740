"""Predicting with a registered model from raw feature-store rows.

A request carries rows of the model's feature-set columns: the timestamp, the series (if
the set has one), the covariates and the target. Rows whose target is null are the future
to forecast; rows with a target are the history the lags read (and, for anomaly models,
the observations to score). The features are built by the same code as in training, so
serving and training cannot drift apart. Every row that has its full history gets a
prediction; a request where no row does is refused with the history it lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from domain.errors import InvalidRequest
from pipeline.evaluate import ResidualThreshold
from pipeline.feature_store import FeatureFrame, FeatureSetSchema
from pipeline.features import build_features, lag_steps, rolling_windows
from pipeline.register import ModelArtifact

FIELD = "rows"


@dataclass(frozen=True)
class Prediction:
    timestamp: pd.Timestamp
    series: str | None
    predicted: float
    actual: float | None
    anomaly: bool | None
    anomaly_score: float | None


def history_needed(horizon: int, season: int) -> int:
    """Consecutive earlier steps a row needs: the longest lag, or the horizon plus the
    longest rolling window."""
    return max(max(lag_steps(horizon, season)), horizon + max(rolling_windows(season)) - 1)


def predict_rows(artifact: ModelArtifact, rows: Sequence[Mapping[str, Any]]) -> list[Prediction]:
    """Predictions for every row with its full history, in time (then series) order.

    Raises:
        InvalidRequest: wrong or missing columns, nulls/NaNs where values are needed,
            unparseable timestamps, or too little history for any row.
    """
    metadata = artifact.metadata
    schema = replace(FeatureSetSchema(**metadata["feature_schema"]), label_column=None)
    horizon = int(metadata["config"]["horizon"])
    season = int(metadata["season"])
    frame = _frame(schema, rows, season)
    matrix = build_features(
        FeatureFrame(schema, frame), horizon, season=season, require_target=False
    )
    if len(matrix.target) == 0:
        need = history_needed(horizon, season)
        raise InvalidRequest(
            FIELD,
            f"missing history for the lags: a row to predict needs the {need} steps before it "
            f"(horizon {horizon}, {season} steps per day) in the same series; "
            f"got {len(frame)} rows",
        )
    predicted = artifact.predict(matrix.features[metadata["features"]].to_numpy())
    actual = matrix.target
    flags = scores = None
    threshold = metadata.get("anomaly_threshold")
    if threshold is not None:
        rule = ResidualThreshold(**threshold)
        flags = rule.flags(actual, predicted)
        scores = np.abs(actual - predicted - rule.center) / rule.scale if rule.scale else None
    series = matrix.series.to_numpy(dtype=str) if matrix.series is not None else None
    return [
        Prediction(
            timestamp=pd.Timestamp(matrix.timestamps.iloc[i]),
            series=None if series is None else str(series[i]),
            predicted=float(predicted[i]),
            actual=None if math.isnan(actual[i]) else float(actual[i]),
            anomaly=None if flags is None or math.isnan(actual[i]) else bool(flags[i]),
            anomaly_score=(None if scores is None or math.isnan(actual[i]) else float(scores[i])),
        )
        for i in range(len(actual))
    ]


def _frame(
    schema: FeatureSetSchema, rows: Sequence[Mapping[str, Any]], season: int
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
    for name in [*needed, *schema.covariates]:
        nulls = np.flatnonzero(frame[name].isna().to_numpy())
        if nulls.size:
            raise InvalidRequest(f"{FIELD}.{int(nulls[0])}.{name}", f"{name} is null or NaN")
    try:
        frame[schema.timestamp_column] = pd.to_datetime(frame[schema.timestamp_column], utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"{FIELD}.{schema.timestamp_column}", f"bad timestamp: {exc}") from exc
    if schema.series_column:
        frame[schema.series_column] = frame[schema.series_column].astype(str)
    for name in [schema.target_column, *schema.covariates]:
        try:
            frame[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(f"{FIELD}.{name}", f"{name} must be numeric: {exc}") from exc
    keys = [c for c in (schema.series_column, schema.timestamp_column) if c]
    if frame.duplicated(keys).any():
        raise InvalidRequest(FIELD, f"duplicate rows for the same {' and '.join(keys)}")
    frame = frame.sort_values(keys, kind="stable")
    _no_gaps(frame, schema, season)
    return frame


def _no_gaps(frame: pd.DataFrame, schema: FeatureSetSchema, season: int) -> None:
    """Timestamps step evenly and null targets only trail a series (the future): a hole
    would silently shift every lag after it."""
    step = pd.Timedelta(seconds=86_400 / season)
    groups = frame.groupby(schema.series_column) if schema.series_column else [(None, frame)]
    for _, group in groups:
        uneven = np.flatnonzero(group[schema.timestamp_column].diff().iloc[1:].to_numpy() != step)
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
