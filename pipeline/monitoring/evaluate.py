"""Monitoring one model: its stored forecasts scored against the actuals the feature set
now holds, each with the model's drift checks as of it.

Plain functions without Ray (``pipeline.graph.monitor`` runs ``monitor_model`` as a task):
the forecasts' rows and their window of the set are read here, never by the
orchestrator.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from pipeline.models.artifacts import feature_spec_of, load_artifact, load_metadata
from pipeline.monitoring.drift import (
    RECENT_WINDOWS,
    SCORED_SHARE,
    Health,
    ShiftCheck,
    Status,
    accuracy_check,
    shift_check,
)
from pipeline.monitoring.reference import ModelReference, model_reference
from pipeline.monitoring.scores import ForecastScores, score_forecast
from pipeline.monitoring.shadow import ShadowModel, shadow_scores
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureSetSchema, FeatureStore
from pipeline.versions.schema import FeatureFrame

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingForecast:
    """A stored forecast to score: its rows are the Parquet file at ``uri``."""

    forecast_id: str
    uri: str
    #: Also forecast by the previous champion (``MonitorTask.shadow``).
    shadowed: bool = False
    #: When it was made: the origin of a forecast without rows.
    created_at: datetime | None = None


@dataclass(frozen=True)
class PastEvaluation:
    """An evaluation already stored: the accuracy rule's earlier windows."""

    origin: datetime
    mae: float


@dataclass(frozen=True)
class MonitorTask:
    model_id: str
    model_uri: str
    tenant_id: str
    feature_set: str
    forecasts: tuple[PendingForecast, ...]
    #: The model's stored evaluations of other forecasts, the most recent ones.
    history: tuple[PastEvaluation, ...] = ()
    #: The champion the model's promotion replaced, while a rollback rule watches it.
    shadow: ShadowModel | None = None


@dataclass(frozen=True)
class Evaluated:
    forecast_id: str
    #: The forecast's first timestamp.
    origin: datetime
    forecast_rows: int
    #: The version of the set whose actuals were used.
    feature_set_version: str
    #: ``rows`` 0: no actual has arrived yet.
    scores: ForecastScores
    #: The drift checks as of this forecast (None without actuals).
    health: Health | None
    #: The previous champion's scores beside the model's (``pipeline.monitoring.shadow``).
    shadow: dict[str, Any] | None = None


def monitor_model(task: MonitorTask, store: FeatureStore) -> list[Evaluated]:
    """Score each of the task's forecasts against the actuals the set has now (in
    forecast-date order) and take the model's drift checks as of each that has some. An
    empty forecast file is scored as complete with no rows, so that it is never due again
    (due for ever, the oldest, it had held monitoring's batch from newer forecasts)."""
    schema = store.schema(task.feature_set)
    read = {f.forecast_id: (f, _read_forecast(f.uri)) for f in task.forecasts}
    empty = [
        _nothing_to_score(f, schema.pinned_version) for f, rows in read.values() if not len(rows)
    ]
    forecasts = {key: rows for key, (_, rows) in read.items() if len(rows)}
    if not forecasts:
        return empty
    model_dir = Location(task.model_uri)
    metadata = load_metadata(model_dir)
    reference = model_reference(model_dir, metadata, store)
    actuals = _actuals(store, schema, list(forecasts.values()), task.history)
    scored = sorted(
        (_origin(rows), key, score_forecast(rows, actuals)) for key, rows in forecasts.items()
    )
    ends = [(_origin(rows), key, rows) for key, rows in forecasts.items()]
    timeline = [(p.origin, p.mae) for p in task.history]
    shadows = _shadows(task, metadata, store, schema, forecasts, actuals)
    evaluated = []
    for origin, forecast_id, scores in scored:
        health = None
        if scores.rows and scores.rows >= SCORED_SHARE * scores.forecast_rows:
            timeline.append((origin, scores.metrics["mae"]))
            recent = sorted(t for t in timeline if t[0] <= origin)[-RECENT_WINDOWS:]
            last = max(rows["timestamp"].max() for o, _, rows in ends if o <= origin)
            window = (actuals["timestamp"] >= recent[0][0]) & (actuals["timestamp"] <= last)
            health = _health([mae for _, mae in recent], reference, actuals[window])
        evaluated.append(
            Evaluated(
                forecast_id,
                origin,
                len(forecasts[forecast_id]),
                schema.pinned_version,
                scores,
                health,
                shadows.get(forecast_id),
            )
        )
    return evaluated + empty


def _nothing_to_score(forecast: PendingForecast, version: str) -> Evaluated:
    origin = forecast.created_at or datetime.fromtimestamp(0, UTC)
    return Evaluated(forecast.forecast_id, origin, 0, version, ForecastScores(0, 0), None)


def _shadows(
    task: MonitorTask,
    metadata: dict[str, Any],
    store: FeatureStore,
    schema: FeatureSetSchema,
    forecasts: dict[str, pd.DataFrame],
    actuals: pd.DataFrame,
) -> dict[str, dict[str, Any]]:
    """The previous champion's scores beside the model's, per shadowed forecast. A
    failure is kept as the reason it was not compared: it never stops the monitoring."""
    wanted = [f.forecast_id for f in task.forecasts if f.shadowed and f.forecast_id in forecasts]
    if task.shadow is None or not wanted:
        return {}
    shadows = {}
    try:
        previous = load_artifact(Location(task.shadow.model_uri))
        spec = feature_spec_of(metadata)
        for forecast_id in wanted:
            found = shadow_scores(
                task.shadow, previous, spec, store, schema, forecasts[forecast_id], actuals
            )
            if found is not None:
                shadows[forecast_id] = found
    except Exception as exc:  # the model's own scores are kept whatever happens here
        logger.exception("the previous champion %s could not forecast", task.shadow.model_id)
        failed = {"promotion_id": task.shadow.promotion_id, "model_id": task.shadow.model_id}
        return {key: {**failed, "rows": 0, "not_compared": f"failed: {exc}"} for key in wanted}
    return shadows


def _origin(rows: pd.DataFrame) -> datetime:
    first: datetime = rows["timestamp"].min().to_pydatetime()
    return first


def _read_forecast(uri: str) -> pd.DataFrame:
    rows: pd.DataFrame = Location(uri).read_parquet().to_pandas()
    rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
    return rows


def _actuals(
    store: FeatureStore,
    schema: FeatureSetSchema,
    forecasts: Sequence[pd.DataFrame],
    history: Sequence[PastEvaluation],
) -> pd.DataFrame:
    """The set's rows over the forecasts' span (from the recent windows' first origin, for
    the shift checks): ``series``, ``timestamp``, ``actual`` and the covariates."""
    first = min(rows["timestamp"].min() for rows in forecasts)
    earlier = sorted(p.origin for p in history if p.origin < first)[-(RECENT_WINDOWS - 1) :]
    start = min([first, *(pd.Timestamp(o) for o in earlier)])
    end = max(rows["timestamp"].max() for rows in forecasts) + pd.Timedelta(microseconds=1)
    names = {s for rows in forecasts if "series" in rows for s in rows["series"].dropna()}
    frame: FeatureFrame = store.load(
        schema.name,
        end.to_pydatetime(),
        version=schema.pinned_version,
        start=start.to_pydatetime(),
        series=sorted(str(s) for s in names) if schema.series_column and names else None,
        columns=[schema.target_column, *schema.covariates],
    )
    data = frame.data.rename(
        columns={schema.timestamp_column: "timestamp", schema.target_column: "actual"}
    )
    if schema.series_column:
        data = data.rename(columns={schema.series_column: "series"})
    else:
        data["series"] = None
    data["timestamp"] = pd.to_datetime(data["timestamp"], utc=True)
    return data


def _health(live: Sequence[float], reference: ModelReference, recent: pd.DataFrame) -> Health:
    accuracy = accuracy_check(live, reference.test_windows)
    target = (
        shift_check(reference.target, _numbers(recent["actual"]))
        if reference.target is not None
        else None
    )
    covariates: dict[str, ShiftCheck] = {
        name: shift_check(bins, _numbers(recent[name]))
        for name, bins in reference.covariates.items()
        if name in recent
    }
    return Health(
        status=accuracy.status if accuracy is not None else Status.OK,
        accuracy=accuracy,
        target=target,
        covariates=covariates,
    )


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
