"""The compare stage: the champion scored on the challenger's test rows, as it serves.

A promotion compares the two models on the same evidence: the rows of the job's test part
(neither model was fitted on them) from the champion's own test start on (before it, the
champion was fitted on them). Both are the models their test parts scored: a champion
refitted on every row (``pipeline.training.final_refit``) has seen all of a later job's
test part, so its scored boosters stand for it, as the job's scored ones stand for the
job's (recipe against recipe, each refitted alike when it serves). The champion
forecasts them with its own artifact and feature spec, its features built from the pinned
feature-set version the job read by the training feature code, its quantiles rescaled by
their recent misses as when it serves (``pipeline.forecasting.predict``). Both are then
scored per UTC day and over the period (``pipeline.scoring.same_rows``) and judged by the
job's policy (``domain.promotions``). The database decides at the job's completion, on
this evidence, if the champion is still the one compared with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from domain.promotions import NO_CHAMPION, Comparison, judge, kept
from pipeline.context import JobContext
from pipeline.evaluation.evaluate import Evaluation
from pipeline.features.build import build_features
from pipeline.features.preprocess import PreparedFeatures, Split
from pipeline.forecasting.batch import CHUNK_SERIES, adaptation_reach
from pipeline.forecasting.predict import history_needed
from pipeline.models.artifacts import ModelArtifact, load_artifact, out_of_sample_from
from pipeline.promotion import ChampionRef
from pipeline.scoring.same_rows import WINDOW_LENGTH, Forecasts, missing_for, same_rows_scores
from pipeline.stages import chunks
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

logger = logging.getLogger(__name__)

#: Asks the service which version is the champion now (None: there is none).
FindChampion = Callable[[], ChampionRef | None]


def compare_with_champion(
    context: JobContext,
    data: PreparedFeatures,
    evaluation: Evaluation,
    features_root: Location,
    find_champion: FindChampion | None,
) -> Comparison:
    """Score the champion on the job's test rows it was not fitted on and judge the job's
    model against it by ``context.config.promotion_policy``. Without a champion (or a
    service to ask) the model would be promoted for want of one."""
    champion = find_champion() if find_champion is not None else None
    if champion is None:
        logger.info("no champion to compare with: the model is promoted if the job completes")
        return Comparison(None, True, NO_CHAMPION)
    policy = context.config.promotion_policy
    artifact = load_artifact(Location(champion.artifact_uri), scored=True)
    problem = incomparable(artifact, data)
    if problem is not None:
        logger.info("the champion %s stays: %s", champion.model_id, problem)
        return kept(champion.model_id, problem)
    test = data.test
    since = out_of_sample_from(artifact.metadata).tz_convert(None)
    common = test.timestamps >= since.to_datetime64()
    if not common.any():
        reason = (
            f"no common period: the champion was fitted on data up to {since.isoformat()}, "
            f"and this model's test part ends at {pd.Timestamp(test.timestamps[-1]).isoformat()}"
        )
        logger.info("the champion %s stays: %s", champion.model_id, reason)
        return kept(champion.model_id, reason)
    store = FeatureStore(features_root, context.tenant_id)
    needs_bounds = policy.metric != "mae"
    theirs, found = champion_forecasts(artifact, store, data, common, needs_bounds)
    rows = np.flatnonzero(common)[found]
    ours = Forecasts(
        evaluation.predictions[rows],
        None if evaluation.bounds is None else evaluation.bounds[rows],
        tuple(context.config.quantiles),
    )
    lacking = missing_for(policy.metric, ours, theirs)
    if lacking is not None or not len(rows):
        reason = lacking or "the champion forecasts none of this model's test rows"
        logger.info("the champion %s stays: %s", champion.model_id, reason)
        return kept(champion.model_id, reason)
    stamps = test.timestamps[rows]
    scores = same_rows_scores(policy.metric, test.y[rows], stamps, ours, theirs)
    period = {
        "start": _iso(stamps[0]),
        "end": _iso(stamps[-1]),
        "rows": len(rows),
        "test_rows": len(test.y),
        "window_length": WINDOW_LENGTH,
    }
    comparison = judge(scores, policy.margin, policy.min_confidence, champion.model_id, period)
    logger.info("against the champion %s: %s", champion.model_id, comparison.reason)
    return comparison


def incomparable(artifact: ModelArtifact, data: PreparedFeatures) -> str | None:
    """Why the champion cannot forecast the job's test rows as the job's model does
    (None: it can)."""
    spec, ours = artifact.feature_spec, data.spec
    trained: dict[str, Any] = artifact.metadata["feature_schema"]
    schema = data.feature_schema
    if spec.horizon != ours.horizon:
        return (
            f"the champion forecasts {spec.horizon} steps ahead and this model {ours.horizon}: "
            "their errors are not comparable (set the alias by hand)"
        )
    if spec.step != ours.step:
        return f"the champion steps by {spec.step} and this feature set by {ours.step}"
    if trained["target_column"] != schema.target_column:
        return f"the champion forecasts {trained['target_column']!r}, not {schema.target_column!r}"
    missing = [c for c in trained["covariates"] if c not in schema.covariates]
    if missing:
        return f"{schema.name!r} lacks the champion's covariates {missing}"
    if spec.series is not None and schema.series_column is None:
        return f"the champion forecasts {len(spec.series)} series; {schema.name!r} has one"
    if "test_start" not in artifact.metadata.get("lineage", {}):
        return "the champion's metadata does not say where its training data ended"
    return None


def champion_forecasts(
    artifact: ModelArtifact,
    store: FeatureStore,
    data: PreparedFeatures,
    rows: np.ndarray,
    needs_bounds: bool,
) -> tuple[Forecasts, np.ndarray]:
    """The champion's forecasts of the job's test rows ``rows`` (a mask) it can forecast,
    and which those are (a mask over ``rows``' true entries): a series it does not know,
    or a row whose features it cannot build, is left out. Series are read and forecast
    ``CHUNK_SERIES`` at a time, so no more than a chunk's history is held at once."""
    test = data.test
    compared = np.flatnonzero(rows)
    point = np.full(len(compared), np.nan)
    bounds: np.ndarray | None = None
    found = np.zeros(len(compared), dtype=bool)
    for part in _series_chunks(artifact, test, compared):
        mine = np.arange(len(compared))
        if part is not None and test.series is not None:
            mine = np.flatnonzero(np.isin(test.series[compared], part))
        forecast = _forecast_rows(artifact, store, data, compared[mine], part, needs_bounds)
        ours, their_bounds, hit = forecast
        point[mine[hit]] = ours
        found[mine[hit]] = True
        if their_bounds is not None:
            if bounds is None:
                bounds = np.full((len(compared), their_bounds.shape[1]), np.nan)
            bounds[mine[hit]] = their_bounds
    calibration = artifact.calibration
    quantiles = calibration.quantiles if calibration is not None and bounds is not None else ()
    return Forecasts(point[found], None if bounds is None else bounds[found], quantiles), found


def _series_chunks(
    artifact: ModelArtifact, test: Split, compared: np.ndarray
) -> list[tuple[str, ...] | None]:
    """The compared rows' series the champion knows, in chunks (``[None]``: one series)."""
    if test.series is None:
        return [None]
    series = set(test.series[compared])
    known = artifact.series or artifact.feature_spec.series
    if known is not None:
        series &= set(known)
    return list(chunks(sorted(series), CHUNK_SERIES))


def _forecast_rows(
    artifact: ModelArtifact,
    store: FeatureStore,
    data: PreparedFeatures,
    indices: np.ndarray,
    series: tuple[str, ...] | None,
    needs_bounds: bool,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The champion's forecasts (point, quantiles as served) of the test rows at
    ``indices`` (of ``series``, None: a set of one) it can make, and which those are."""
    test, schema, spec = data.test, data.feature_schema, artifact.feature_spec
    stamps_wanted = test.timestamps[indices]
    first = pd.Timestamp(stamps_wanted.min(), tz="UTC")
    last = pd.Timestamp(stamps_wanted.max(), tz="UTC")
    recent = adaptation_reach(artifact.metadata) if needs_bounds else pd.Timedelta(0)
    frame = store.load(
        schema.name,
        last + spec.step,
        version=schema.pinned_version,
        start=first - recent - history_needed(spec) * spec.step,
        series=series,
    )
    matrix = build_features(frame, spec, columns=artifact.metadata["features"])
    stamps = matrix.timestamps.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    names = None if matrix.series is None else matrix.series.to_numpy(dtype=str)
    at = pd.MultiIndex.from_arrays([_names(names, len(stamps)), stamps])
    wanted_names = None if test.series is None else test.series[indices]
    position = at.get_indexer(
        pd.MultiIndex.from_arrays([_names(wanted_names, len(indices)), stamps_wanted])
    )
    hit = position >= 0
    # Rows before the first compared one only lend their misses to the intervals.
    used = stamps >= (first - recent).tz_convert(None).to_datetime64()
    features = matrix.features.to_numpy()[used]
    point = artifact.predict(features) if len(features) else np.empty(0)
    bounds = artifact.predict_quantiles(features, point) if needs_bounds and len(point) else None
    picked = (np.cumsum(used) - 1)[position[hit]]  # their positions among the used rows
    if bounds is not None:
        wanted = np.zeros(len(point), dtype=bool)
        wanted[picked] = True
        bounds = artifact.served_quantiles(
            point,
            bounds,
            matrix.target[used],
            stamps[used],
            None if names is None else names[used],
            wanted=wanted,
        )
    return point[picked], None if bounds is None else bounds[picked], hit


def _names(series: np.ndarray | None, rows: int) -> np.ndarray:
    """Rows' series keys (a constant for a set of one)."""
    return np.zeros(rows) if series is None else series


def _iso(value: np.datetime64) -> str:
    return pd.Timestamp(value).tz_localize("UTC").isoformat()
