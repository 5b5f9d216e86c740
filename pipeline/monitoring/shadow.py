"""A new champion's scored forecast shadowed by the champion its promotion replaced: the
previous one forecasts the same (series, timestamp) rows, and both are scored on the rows
both forecast, over the forecast and per UTC day (``domain.rollbacks`` decides on them).

The rows play the part of a job's test part in the compare stage
(``pipeline.forecasting.champion``), whose code forecasts them: the previous champion's
features are built from the feature set's version by the training feature code, its
quantiles rescaled by their recent misses as it serves them. Both are direct models of
the same horizon (else they are not compared), whose features read actuals at least a
horizon old, so a row at lead ``k <= horizon`` of the stored forecast is forecast from
what was known at that forecast's origin: the same lead for both. Covariates are the
set's values now, as in the compare stage.

The result (``shadow`` of an evaluation) is a plain dict::

    {"promotion_id", "model_id" (the previous champion), "rows",
     "metrics": {metric: {"model": score, "previous": score}},
     "days": [{"day": "2025-05-01", "rows", "metrics": {...}}, ...]}

or, when the previous champion cannot forecast these rows, ``rows`` 0 and
``not_compared`` saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import numpy as np
import pandas as pd

from domain.promotions import PromotionMetric
from pipeline.features.build import FeatureSpec
from pipeline.features.preprocess import PreparedData, Split
from pipeline.forecasting.champion import champion_forecasts, incomparable
from pipeline.models.artifacts import ModelArtifact
from pipeline.monitoring.scores import quantile_columns, with_actuals
from pipeline.scoring.same_rows import Forecasts, missing_for, same_rows_scores
from pipeline.store.feature_store import FeatureSetSchema, FeatureStore

#: Every metric a rollback rule may ask for, each scored where both models allow it.
METRICS: tuple[PromotionMetric, ...] = get_args(PromotionMetric)


@dataclass(frozen=True)
class ShadowModel:
    """The champion a promotion replaced, to forecast the new one's scored forecasts."""

    promotion_id: str
    model_id: str
    model_uri: str
    #: Forecasts made since are shadowed.
    promoted_at: datetime


def shadow_scores(
    shadow: ShadowModel,
    previous: ModelArtifact,
    spec: FeatureSpec,
    store: FeatureStore,
    schema: FeatureSetSchema,
    forecast: pd.DataFrame,
    actuals: pd.DataFrame,
) -> dict[str, Any] | None:
    """The previous champion's scores beside the new one's (``spec``: its feature spec) on
    the rows of ``forecast`` that have ``actuals`` (None: none has one yet)."""
    joined = with_actuals(forecast, actuals)
    if joined.empty:
        return None
    head = {"promotion_id": shadow.promotion_id, "model_id": shadow.model_id}
    rows = _as_test_part(joined, spec, schema, previous)
    problem = incomparable(previous, rows)
    if problem is not None:
        return {**head, "rows": 0, "not_compared": problem}
    quantiles = quantile_columns(joined)
    needs_bounds = bool(quantiles) and previous.calibration is not None
    theirs, found = champion_forecasts(
        previous, store, rows, np.ones(len(joined), dtype=bool), needs_bounds
    )
    if not found.any():
        return {**head, "rows": 0, "not_compared": "it forecasts none of these rows"}
    ours = Forecasts(
        joined["predicted"].to_numpy(float)[found],
        joined[list(quantiles.values())].to_numpy(float)[found] if quantiles else None,
        tuple(quantiles),
    )
    actual, stamps = rows.test.y[found], rows.test.timestamps[found]
    metrics: dict[str, Any] = {}
    days: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        if missing_for(metric, ours, theirs) is not None:
            continue
        scores = same_rows_scores(metric, actual, stamps, ours, theirs)
        metrics[metric] = _pair(scores.challenger, scores.champion)
        for label, mine, before in zip(
            scores.labels, scores.challenger_windows, scores.champion_windows, strict=True
        ):
            days.setdefault(label, {})[metric] = _pair(mine, before)
    per_day = pd.DatetimeIndex(stamps).floor("D").strftime("%Y-%m-%d").value_counts()
    return {
        **head,
        "rows": int(found.sum()),
        "metrics": metrics,
        "days": [
            {"day": day, "rows": int(per_day[day]), "metrics": scored}
            for day, scored in sorted(days.items())
        ],
    }


def _as_test_part(
    joined: pd.DataFrame, spec: FeatureSpec, schema: FeatureSetSchema, previous: ModelArtifact
) -> PreparedData:
    """The scored rows as the compare stage takes a job's test part (nothing to train)."""
    stamps = pd.DatetimeIndex(joined["timestamp"]).tz_convert("UTC").tz_localize(None)
    count = len(joined)
    test = Split(
        X=np.empty((count, 0)),
        y=joined["actual"].to_numpy(float),
        timestamps=stamps.to_numpy(dtype="datetime64[ns]"),
        series=joined["series"].to_numpy(dtype=str) if schema.series_column else None,
        labels=None,
        seasonal_naive=np.full(count, np.nan),
    )
    empty = Split(np.empty((0, 0)), np.empty(0), test.timestamps[:0], None, None, np.empty(0))
    return PreparedData(
        validation=empty,
        test=test,
        feature_names=[],
        scaler=previous.scaler,
        spec=spec,
        feature_schema=schema,
        train=empty,
    )


def _pair(model: float, previous: float) -> dict[str, float | None]:
    return {"model": _finite(model), "previous": _finite(previous)}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
