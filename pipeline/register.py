"""The register stage: save a model with what it needs to predict again, and read it back.

An artifact directory ``<root>/<tenant>/<model_name>/<version>/`` holds:
``model.txt`` (the LightGBM booster), ``preprocessing.joblib`` (the fitted scaler),
``metadata.json`` (features, params, metrics, lineage) and ``test_predictions.parquet``.
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
from pipeline.config import TrainingConfig
from pipeline.evaluate import Evaluation, ResidualThreshold
from pipeline.preprocess import PreparedData
from pipeline.storage import Location
from pipeline.train import TrainedModel

logger = logging.getLogger(__name__)

VERSION_FORMAT = "%Y%m%d.%H%M%S"
MODEL_FILE = "model.txt"
PREPROCESSING_FILE = "preprocessing.joblib"
METADATA_FILE = "metadata.json"
PREDICTIONS_FILE = "test_predictions.parquet"

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

    def summary(self) -> dict[str, object]:
        return {"version": self.version, "artifact_uri": self.artifact_uri}


@dataclass(frozen=True)
class ModelArtifact:
    """A registered model loaded back from its directory."""

    booster: lgb.Booster
    scaler: StandardScaler
    metadata: dict[str, Any]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predict from unscaled feature rows, columns in ``metadata['features']`` order."""
        scaled = self.scaler.transform(features)
        return np.asarray(
            self.booster.predict(scaled, num_iteration=self.metadata["best_iteration"])
        )


def register(
    context: JobContext,
    model: TrainedModel,
    data: PreparedData,
    evaluation: Evaluation,
    artifacts_root: Location,
    claim_version: ClaimVersion | None = None,
    now: datetime | None = None,
) -> SavedModel:
    """Write the artifact directory and return what the registry row needs.

    Every file is written whole, so a stage retried under the same version overwrites
    what an interrupted attempt left.
    """
    parent = artifacts_root / context.tenant_id / context.model_name
    version = (claim_version or claim_directory)(parent, now or datetime.now(UTC))
    directory = parent / version
    (directory / MODEL_FILE).write_text(
        model.booster.model_to_string(num_iteration=model.best_iteration)
    )
    scaler = io.BytesIO()
    joblib.dump(data.scaler, scaler)
    (directory / PREPROCESSING_FILE).write_bytes(scaler.getvalue())
    predictions = _predictions_table(data, evaluation)
    (directory / PREDICTIONS_FILE).write_parquet(
        pa.Table.from_pandas(predictions, preserve_index=False)
    )
    metadata = {
        "model_id": f"{context.tenant_id}:{context.model_name}:{version}",
        "version": version,
        "model_type": context.model_type.value,
        "features": data.feature_names,
        "season": data.season,
        "feature_schema": asdict(data.feature_schema),
        "best_iteration": model.best_iteration,
        "params": model.params,
        "metrics": evaluation.metrics,
        "anomaly_threshold": _threshold(evaluation.threshold),
        "search": model.search,
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
    )


def load_artifact(directory: Location) -> ModelArtifact:
    return ModelArtifact(
        booster=lgb.Booster(model_str=(directory / MODEL_FILE).read_text()),
        scaler=joblib.load(io.BytesIO((directory / PREPROCESSING_FILE).read_bytes())),
        metadata=json.loads((directory / METADATA_FILE).read_text()),
    )


def load_predictions(directory: Location) -> pd.DataFrame:
    """The test period's actual and predicted values saved with the model."""
    frame: pd.DataFrame = (directory / PREDICTIONS_FILE).read_parquet().to_pandas()
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
    if evaluation.anomaly_flags is not None:
        table["anomaly"] = evaluation.anomaly_flags
    return table


def _threshold(threshold: ResidualThreshold | None) -> dict[str, float] | None:
    if threshold is None:
        return None
    return {"center": threshold.center, "scale": threshold.scale, "z": threshold.z}


def _iso(value: np.datetime64) -> str:
    return pd.Timestamp(value).tz_localize("UTC").isoformat()
