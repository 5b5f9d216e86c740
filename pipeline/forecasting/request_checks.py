"""A batch forecast's request checked against the model and the set: the set fits the
model (target, covariates, series, step, horizon) and the series asked for can be
forecast (in the set, known to the model, with the history its lags need), from the
set's key and target columns alone, read a batch at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from domain.errors import InvalidRequest
from pipeline.models.artifacts import feature_spec_of
from pipeline.store.feature_store import FeatureSetSchema, FeatureStore

#: The series key of a set with a single series (its output's ``series`` is null).
ONE_SERIES = "_series"
#: Batches' spans combined at a time while a plan reads the key columns.
SPANS_COMBINED = 64


def compatible_schema(
    store: FeatureStore,
    metadata: dict[str, Any],
    feature_set: str,
    horizon: int,
    version: str | None = None,
) -> FeatureSetSchema:
    """The schema of the set's current version (or of ``version``), once the model can
    forecast ``horizon`` steps of it.

    Raises:
        InvalidRequest: on ``feature_set`` (unknown) or as ``check_compatible``.
    """
    if not store.exists(feature_set):
        raise InvalidRequest("feature_set", f"no feature set {feature_set!r}")
    schema = store.schema(feature_set, version)
    check_compatible(metadata, schema, store.step_seconds(feature_set), horizon)
    return schema


def check_compatible(
    metadata: dict[str, Any], schema: FeatureSetSchema, step_seconds: float, horizon: int
) -> None:
    """Whether the model can forecast ``horizon`` steps of this set at all.

    Raises:
        InvalidRequest: on ``horizon`` (beyond the model's), or ``feature_set`` (without
            the model's target, covariates or series, or at another time step).
    """
    spec = feature_spec_of(metadata)
    if horizon > spec.horizon:
        raise InvalidRequest(
            "horizon",
            f"the model was trained for a horizon of {spec.horizon} steps: its lags reach "
            f"no further, so it cannot forecast {horizon} steps ahead",
        )
    trained = metadata["feature_schema"]
    if schema.target_column != trained["target_column"]:
        raise InvalidRequest(
            "feature_set",
            f"{schema.name!r} has target {schema.target_column!r}; the model forecasts "
            f"{trained['target_column']!r}",
        )
    missing = [c for c in trained["covariates"] if c not in schema.covariates]
    if missing:
        raise InvalidRequest(
            "feature_set", f"{schema.name!r} lacks the model's covariates {missing}"
        )
    if spec.series is not None and schema.series_column is None:
        raise InvalidRequest(
            "feature_set",
            f"{schema.name!r} has no series column; the model was trained on "
            f"{len(spec.series)} series",
        )
    if spec.step_seconds is not None and not math.isclose(step_seconds, spec.step_seconds):
        raise InvalidRequest(
            "feature_set",
            f"{schema.name!r} steps by {step_seconds:g} s; the model was trained on steps "
            f"of {spec.step_seconds:g} s",
        )


def chosen_series(
    metadata: dict[str, Any],
    schema: FeatureSetSchema,
    spans: pd.DataFrame,
    series: Sequence[str] | None,
) -> tuple[str, ...]:
    """The series a request forecasts, given each series' ``first`` and ``last`` timestamp
    with a known target (``_spans``).

    Raises:
        InvalidRequest: on ``series`` (not in the set, unknown to the model, or with too
            little history), or ``feature_set`` (a series of it is unknown to the model
            or too short, when no series were named).
    """
    spec = feature_spec_of(metadata)
    field = "series" if series is not None else "feature_set"
    if schema.series_column is None and series is not None:
        raise InvalidRequest("series", f"{schema.name!r} has a single series: omit series")
    present = spans.index
    chosen = tuple(dict.fromkeys(series)) if series is not None else tuple(sorted(present))
    unknown = [s for s in chosen if s not in present]
    if unknown:
        raise InvalidRequest(
            "series", f"{len(unknown)} series not in {schema.name!r}: {unknown[:5]}"
        )
    if spec.series is not None:
        strangers = sorted(set(chosen) - set(spec.series))
        if strangers:
            raise InvalidRequest(
                field,
                f"the model was not trained on {len(strangers)} of these series "
                f"({strangers[:5]}); name the series to forecast with 'series'",
            )
    selected = spans.loc[list(chosen)]
    empty = sorted(selected.index[selected["last"].isna()])
    if empty:
        raise InvalidRequest(field, f"series without a known {schema.target_column}: {empty[:5]}")
    seconds = (selected["last"] - selected["first"]).dt.total_seconds()
    steps = (seconds / spec.step.total_seconds()).round() + 1
    need = spec.warm_up
    short = steps[steps < need]
    if len(short):
        raise InvalidRequest(
            field,
            f"{len(short)} series have less history than the {need} steps the model's lags "
            f"need (e.g. {short.index[0]!r}: {int(short.iloc[0])} steps)",
        )
    return chosen


def set_spans(
    store: FeatureStore,
    feature_set: str,
    schema: FeatureSetSchema,
    series: Sequence[str] | None,
) -> pd.DataFrame:
    """``_spans`` of the rows of the set's version (of ``series`` only), from its key and
    target columns read a batch at a time; the batches' spans are combined as they come,
    so what is held grows with the series, not with the rows."""
    keys = [schema.series_column, schema.timestamp_column, schema.target_column]
    batches = store.batches(
        feature_set, [c for c in keys if c], version=schema.pinned_version, series=series
    )
    parts: list[pd.DataFrame] = []
    for batch in batches:
        parts.append(_spans(batch, schema))
        if len(parts) == SPANS_COMBINED:
            parts = [_combined(parts)]
    return _combined(parts) if parts else pd.DataFrame(columns=["first", "last"])


def _combined(spans: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(spans).groupby(level=0).agg({"first": "min", "last": "max"})


def _spans(data: pd.DataFrame, schema: FeatureSetSchema) -> pd.DataFrame:
    """Per series (the index; ``ONE_SERIES`` for a set of one): its ``first`` and
    ``last`` timestamps with a known target (NaT where it has none)."""
    keys = data[schema.series_column].astype(str) if schema.series_column else ONE_SERIES
    known = data[schema.timestamp_column].where(data[schema.target_column].notna())
    spans = known.groupby(pd.Series(keys, index=data.index)).agg(["min", "max"])
    return spans.set_axis(["first", "last"], axis=1)
