"""The register stage: save a model with what it needs to predict again, in the artifact
directory ``pipeline.models.artifacts`` lays out (and reads back).

The version comes from a ``ClaimVersion``: in the service the orchestrator hands it out
(``actors.versions``), so two jobs never share one; without an orchestrator, creating the
directory claims it (exclusive on a local disk only). The root is a local path or a
``pyarrow.fs`` URI, and ``artifact_uri`` is written in the same form.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa

from domain.names import model_id
from domain.promotions import Comparison
from pipeline.context import JobContext
from pipeline.evaluation.backtest import BacktestResult
from pipeline.evaluation.evaluate import Evaluation
from pipeline.features.preprocess import PreparedFeatures
from pipeline.models.artifacts import (
    METADATA_FILE,
    PREDICTIONS_FILE,
    PREPROCESSING_FILE,
    SCORED_DIRECTORY,
    SERIES_METRICS_FILE,
    ClaimVersion,
    claim_directory,
    member_file,
    model_directory,
    quantile_column,
    quantile_file,
    series_directory,
)
from pipeline.scoring.detector import METADATA_KEY as DETECTOR_KEY
from pipeline.storage import Location
from pipeline.summaries import RegisterSummary
from pipeline.training.blend import Blend, blend_importance
from pipeline.training.per_series import SeriesBundle
from pipeline.training.train import TrainedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedModel:
    version: str
    artifact_uri: str
    metrics: dict[str, float]
    params: dict[str, Any]
    features: list[str]
    feature_importance: dict[str, float]
    #: The feature-set version it was trained on (its lineage).
    feature_set_version: str
    #: How it did against the champion, when its job promotes (``compare_with_champion``).
    comparison: Comparison | None = None

    def summary(self) -> RegisterSummary:
        return RegisterSummary(version=self.version, artifact_uri=self.artifact_uri)


def register(
    context: JobContext,
    model: TrainedModel | SeriesBundle,
    data: PreparedFeatures,
    evaluation: Evaluation,
    backtest: BacktestResult | None,
    artifacts_root: Location,
    claim_version: ClaimVersion | None = None,
    comparison: Comparison | None = None,
    now: datetime | None = None,
) -> SavedModel:
    """Write the artifact directory and return what the registry row needs; with a
    backtest, the stage waits for it (a failed backtest registers nothing) and keeps its
    windows in the metadata; a ``comparison`` with the champion is passed on for the
    promotion decision at the job's completion.

    Every file is written whole, so a stage retried under the same version overwrites
    what an interrupted attempt left.
    """
    parent = model_directory(artifacts_root, context.tenant_id, context.model_name)
    version = (claim_version or claim_directory)(parent, now or datetime.now(UTC))
    directory = parent / version
    boosters = _write_model(directory, model, data.feature_names)
    scaler = io.BytesIO()
    joblib.dump(data.scaler, scaler)
    (directory / PREPROCESSING_FILE).write_bytes(scaler.getvalue())
    predictions = _predictions_table(data, evaluation, context.config.quantiles)
    (directory / PREDICTIONS_FILE).write_parquet(
        pa.Table.from_pandas(predictions, preserve_index=False)
    )
    if evaluation.series_metrics is not None:
        (directory / SERIES_METRICS_FILE).write_parquet(
            pa.Table.from_pandas(evaluation.series_metrics, preserve_index=False)
        )
    importance = boosters.pop("feature_importance")
    train_start, train_end = data.train_period()
    metadata = {
        "model_id": model_id(context.tenant_id, context.model_name, version),
        "version": version,
        "model_type": context.model_type.value,
        "features": data.feature_names,
        "season": data.season,
        "feature_spec": asdict(data.spec),
        "feature_schema": asdict(data.feature_schema),
        **boosters,
        "best_iteration": model.best_iteration,
        "params": model.params,
        "metrics": evaluation.metrics,
        "feature_importance": importance,
        DETECTOR_KEY: evaluation.detector.to_dict() if evaluation.detector else None,
        "interval_adaptation": (
            evaluation.adaptation.as_dict() if evaluation.adaptation is not None else None
        ),
        "search": model.search.as_dict() if model.search is not None else None,
        "backtest": backtest.summary().as_dict() if backtest is not None else None,
        "config": context.config.model_dump(mode="json"),
        "lineage": {
            "job_id": context.job_id,
            "tenant_id": context.tenant_id,
            "feature_set": context.config.feature_set,
            "feature_set_version": data.feature_schema.pinned_version,
            "train_start": _iso(train_start),
            "train_end": _iso(train_end),
            "test_start": _iso(data.test.timestamps[0]),
            "test_end": _iso(data.test.timestamps[-1]),
            "out_of_sample_from": _out_of_sample_from(data, context.config.refit_on_all_rows),
        },
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    logger.info("saved model %s to %s", metadata["model_id"], directory)
    return SavedModel(
        version=version,
        artifact_uri=str(directory),
        metrics=evaluation.metrics,
        params=model.params,
        features=data.feature_names,
        feature_importance=importance,
        feature_set_version=data.feature_schema.pinned_version,
        comparison=comparison,
    )


def _write_model(
    directory: Location, model: TrainedModel | SeriesBundle, features: list[str]
) -> dict[str, Any]:
    """Write the boosters; their metadata entries and the feature importance. A bundle's
    series each get a subdirectory laid out as a single model's, listed under
    ``per_series``; its importance is the mean of theirs."""
    match model:
        case SeriesBundle():
            entries = []
            for index, (series, part) in enumerate(model.models.items()):
                name = series_directory(index)
                entry = _write_boosters(directory / name, part, features)
                entries.append({"series": series, "directory": name, **entry})
            importance = {
                feature: float(np.mean([e["feature_importance"][feature] for e in entries]))
                for feature in features
            }
            for entry in entries:
                del entry["feature_importance"]
            return {
                "members": [],
                "quantile_members": [],
                "quantile_calibration": None,
                "per_series": entries,
                "feature_importance": importance,
            }
        case TrainedModel():
            entry = _write_boosters(directory, model, features)
            if model.scored is not None:
                scored = _write_boosters(directory / SCORED_DIRECTORY, model.scored, features)
                del scored["feature_importance"]
                entry["scored"] = {"directory": SCORED_DIRECTORY, **scored}
            return entry


def _write_boosters(directory: Location, model: Blend, features: list[str]) -> dict[str, Any]:
    members = []
    for index, member in enumerate(model.members):
        name = member_file(index)
        (directory / name).write_text(member.booster.model_to_string(num_iteration=member.rounds))
        members.append({"file": name, "objective": member.objective, "rounds": member.rounds})
    quantile_members = []
    for member in model.quantile_members:
        assert member.alpha is not None  # a quantile booster's quantile
        name = quantile_file(member.alpha)
        (directory / name).write_text(member.booster.model_to_string(num_iteration=member.rounds))
        quantile_members.append({"file": name, "alpha": member.alpha, "rounds": member.rounds})
    calibration = model.calibration
    return {
        "members": members,
        "quantile_members": quantile_members,
        "quantile_calibration": calibration.as_dict() if calibration else None,
        "level": model.level.as_dict() if model.level else None,
        "feature_importance": blend_importance(model.members, features),
    }


def _predictions_table(
    data: PreparedFeatures, evaluation: Evaluation, quantiles: list[float]
) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(data.test.timestamps).tz_localize("UTC"),
            "actual": data.test.y,
            "predicted": evaluation.predictions,
        }
    )
    if data.test.series is not None:
        table.insert(1, "series", data.test.series)
    if evaluation.bounds is not None:
        for i, q in enumerate(quantiles):
            table[quantile_column(q)] = evaluation.bounds[:, i]
    if evaluation.detection is not None:
        table["anomaly"] = evaluation.detection.events.flags
        table["anomaly_score"] = evaluation.detection.scores
    return table


def _out_of_sample_from(data: PreparedFeatures, refit_on_all_rows: bool) -> str:
    """The first time the model was not fitted on: its test part's start, or with a final
    refit on every row (``pipeline.training.final_refit``), the step after its last row."""
    if not refit_on_all_rows:
        return _iso(data.test.timestamps[0])
    after = pd.Timestamp(data.test.timestamps.max()) + data.spec.step
    return _iso(after.to_datetime64())


def _iso(value: np.datetime64) -> str:
    return pd.Timestamp(value).tz_localize("UTC").isoformat()
