"""The register stage: save a model with what it needs to predict again, and read it back.

An artifact directory ``<root>/<tenant>/<model_name>/<version>/`` holds:
``model.txt`` (the first LightGBM booster; ``model-1.txt``... for the others of a blend),
``preprocessing.joblib`` (the fitted scaler), ``metadata.json`` (features and how to build
them, params, metrics, quantile calibration, feature importance, lineage),
``test_predictions.parquet`` and, for a multi-series set, ``series_metrics.parquet``.
The version comes from a ``ClaimVersion``: in the service the orchestrator hands it out
(``actors.versions``), so two jobs never share one; without an orchestrator, creating the
directory claims it (exclusive on a local disk only). The root is a local path or a
``pyarrow.fs`` URI, and ``artifact_uri`` is written in the same form.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.preprocessing import StandardScaler

from domain.jobs import ModelType
from pipeline.backtest import BacktestResult
from pipeline.blend import (
    Member,
    blend_contributions,
    blend_importance,
    blend_predict,
    quantile_forecasts,
)
from pipeline.config import TrainingConfig
from pipeline.evaluate import Evaluation, ResidualThreshold
from pipeline.features import FeatureSpec
from pipeline.intervals import QuantileCalibration
from pipeline.preprocess import PreparedData
from pipeline.storage import Location
from pipeline.summaries import RegisterSummary
from pipeline.train import TrainedModel

logger = logging.getLogger(__name__)

VERSION_FORMAT = "%Y%m%d.%H%M%S"
MODEL_FILE = "model.txt"
PREPROCESSING_FILE = "preprocessing.joblib"
METADATA_FILE = "metadata.json"
PREDICTIONS_FILE = "test_predictions.parquet"
SERIES_METRICS_FILE = "series_metrics.parquet"

#: Picks the version to register: (the model's directory, the clock) -> version.
ClaimVersion = Callable[[Location, datetime], str]


@dataclass(frozen=True)
class JobContext:
    """What a pipeline run knows about the job it serves."""

    job_id: str
    tenant_id: str
    model_type: ModelType
    model_name: str
    config: TrainingConfig


@dataclass(frozen=True)
class SavedModel:
    version: str
    artifact_uri: str
    metrics: dict[str, float]
    params: dict[str, Any]
    features: list[str]
    feature_importance: dict[str, float]

    def summary(self) -> RegisterSummary:
        return RegisterSummary(version=self.version, artifact_uri=self.artifact_uri)


@dataclass(frozen=True)
class ModelArtifact:
    """A registered model loaded back from its directory."""

    members: tuple[Member, ...]
    scaler: StandardScaler
    metadata: dict[str, Any]
    quantile_members: tuple[Member, ...] = ()

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predict from unscaled feature rows, columns in ``metadata['features']`` order."""
        return blend_predict(self.members, self.scaler.transform(features))

    def predict_quantiles(self, features: np.ndarray, point: np.ndarray) -> np.ndarray | None:
        """The quantile forecasts (one column per quantile) of unscaled feature rows whose
        point forecasts are ``point``; None for models without quantiles."""
        scaled = self.scaler.transform(features)
        return quantile_forecasts(self.calibration, self.quantile_members, scaled, point)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per-row contributions of each feature, then the expected value (last column);
        each row sums to ``predict``'s forecast."""
        return blend_contributions(self.members, self.scaler.transform(features))

    @property
    def calibration(self) -> QuantileCalibration | None:
        stored = self.metadata.get("quantile_calibration")
        return QuantileCalibration.from_dict(stored) if stored else None

    @property
    def feature_spec(self) -> FeatureSpec:
        """How the model's features are built (models registered before the spec was saved
        read the horizon and season alone)."""
        stored = self.metadata.get("feature_spec")
        if stored:
            return FeatureSpec.from_dict(stored)
        return FeatureSpec(int(self.metadata["config"]["horizon"]), int(self.metadata["season"]))


def register(
    context: JobContext,
    model: TrainedModel,
    data: PreparedData,
    evaluation: Evaluation,
    backtest: BacktestResult | None,
    artifacts_root: Location,
    claim_version: ClaimVersion | None = None,
    now: datetime | None = None,
) -> SavedModel:
    """Write the artifact directory and return what the registry row needs; with a
    backtest, the stage waits for it (a failed backtest registers nothing) and keeps its
    windows in the metadata.

    Every file is written whole, so a stage retried under the same version overwrites
    what an interrupted attempt left.
    """
    parent = artifacts_root / context.tenant_id / context.model_name
    version = (claim_version or claim_directory)(parent, now or datetime.now(UTC))
    directory = parent / version
    members = []
    for index, member in enumerate(model.members):
        name = MODEL_FILE if index == 0 else f"model-{index}.txt"
        (directory / name).write_text(member.booster.model_to_string(num_iteration=member.rounds))
        members.append({"file": name, "objective": member.objective, "rounds": member.rounds})
    quantile_members = []
    for member in model.quantile_members:
        name = f"quantile-{member.alpha:g}.txt"
        (directory / name).write_text(member.booster.model_to_string(num_iteration=member.rounds))
        quantile_members.append({"file": name, "alpha": member.alpha, "rounds": member.rounds})
    scaler = io.BytesIO()
    joblib.dump(data.scaler, scaler)
    (directory / PREPROCESSING_FILE).write_bytes(scaler.getvalue())
    predictions = _predictions_table(data, evaluation)
    (directory / PREDICTIONS_FILE).write_parquet(
        pa.Table.from_pandas(predictions, preserve_index=False)
    )
    if evaluation.series_metrics is not None:
        (directory / SERIES_METRICS_FILE).write_parquet(
            pa.Table.from_pandas(evaluation.series_metrics, preserve_index=False)
        )
    importance = blend_importance(model.members, data.feature_names)
    calibration = model.calibration
    metadata = {
        "model_id": f"{context.tenant_id}:{context.model_name}:{version}",
        "version": version,
        "model_type": context.model_type.value,
        "features": data.feature_names,
        "season": data.season,
        "feature_spec": asdict(data.spec),
        "feature_schema": asdict(data.feature_schema),
        "members": members,
        "quantile_members": quantile_members,
        "best_iteration": model.best_iteration,
        "params": model.params,
        "metrics": evaluation.metrics,
        "feature_importance": importance,
        "quantile_calibration": calibration.as_dict() if calibration else None,
        "anomaly_threshold": _threshold(evaluation.threshold),
        "search": model.search.as_dict() if model.search is not None else None,
        "backtest": backtest.summary().as_dict() if backtest is not None else None,
        "config": context.config.model_dump(mode="json"),
        "lineage": {
            "job_id": context.job_id,
            "tenant_id": context.tenant_id,
            "feature_set": context.config.feature_set,
            "train_start": _iso(data.train.timestamps[0]),
            "train_end": _iso(data.train.timestamps[-1]),
            "test_start": _iso(data.test.timestamps[0]),
            "test_end": _iso(data.test.timestamps[-1]),
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
    )


def load_artifact(directory: Location) -> ModelArtifact:
    metadata = json.loads((directory / METADATA_FILE).read_text())
    stored = metadata.get("members") or [
        {"file": MODEL_FILE, "objective": "regression", "rounds": metadata["best_iteration"]}
    ]
    members = tuple(
        Member(
            entry["objective"],
            lgb.Booster(model_str=(directory / entry["file"]).read_text()),
            int(entry["rounds"]),
        )
        for entry in stored
    )
    quantile_members = tuple(
        Member(
            "quantile",
            lgb.Booster(model_str=(directory / entry["file"]).read_text()),
            int(entry["rounds"]),
            float(entry["alpha"]),
        )
        for entry in metadata.get("quantile_members") or []
    )
    return ModelArtifact(
        members=members,
        scaler=joblib.load(io.BytesIO((directory / PREPROCESSING_FILE).read_bytes())),
        metadata=metadata,
        quantile_members=quantile_members,
    )


def load_predictions(directory: Location) -> pd.DataFrame:
    """The test period's actual and predicted values (and quantiles) saved with the model."""
    frame: pd.DataFrame = (directory / PREDICTIONS_FILE).read_parquet().to_pandas()
    return frame


def load_series_metrics(directory: Location) -> pd.DataFrame | None:
    """The per-series test metrics of a multi-series model; None for a single series."""
    location = directory / SERIES_METRICS_FILE
    if not location.is_file():
        return None
    frame: pd.DataFrame = location.read_parquet().to_pandas()
    return frame


def claim_directory(parent: Location, now: datetime) -> str:
    """The first second from ``now`` whose directory this call creates: for runs with no
    orchestrator to ask (see ``Location.create_dir_exclusive`` for object stores)."""
    moment = now.replace(microsecond=0)
    while not (parent / moment.strftime(VERSION_FORMAT)).create_dir_exclusive():
        moment += timedelta(seconds=1)
    return moment.strftime(VERSION_FORMAT)


def _predictions_table(data: PreparedData, evaluation: Evaluation) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(data.test.timestamps).tz_localize("UTC"),
            "actual": data.test.y,
            "predicted": evaluation.predictions,
        }
    )
    if data.test.series is not None:
        table.insert(1, "series", data.test.series)
    if evaluation.bounds is not None and evaluation.calibration is not None:
        for i, q in enumerate(evaluation.calibration.quantiles):
            table[quantile_column(q)] = evaluation.bounds[:, i]
    if evaluation.anomaly_flags is not None:
        table["anomaly"] = evaluation.anomaly_flags
    return table


def quantile_column(quantile: float) -> str:
    """The test-predictions column of a quantile: ``q0.1``."""
    return f"q{quantile:g}"


def _threshold(threshold: ResidualThreshold | None) -> dict[str, float] | None:
    if threshold is None:
        return None
    return {"center": threshold.center, "scale": threshold.scale, "z": threshold.z}


def _iso(value: np.datetime64) -> str:
    return pd.Timestamp(value).tz_localize("UTC").isoformat()
