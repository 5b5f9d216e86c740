"""Model artifacts: the layout of a registered model's directory, its version format, and
reading a model back (the register stage writes them, serving and the API read them).

An artifact directory ``<root>/<tenant>/<model_name>/<version>/`` holds:
``model.txt`` (the first LightGBM booster; ``model-1.txt``... for the others of a blend,
``quantile-0.1.txt``... for the quantile boosters), ``preprocessing.joblib`` (the fitted
scaler), ``metadata.json`` (features and how to build them, params, metrics, quantile
calibration, feature importance, lineage), ``test_predictions.parquet`` and, for a
multi-series set, ``series_metrics.parquet``. A version is the second it was claimed
(``domain.versions``). The root is a local path or a ``pyarrow.fs`` URI.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from domain.versions import first_free_version
from pipeline.blend import Member, blend_contributions, blend_predict, quantile_forecasts
from pipeline.features import FeatureSpec
from pipeline.intervals import QuantileCalibration
from pipeline.storage import Location

MODEL_FILE = "model.txt"
PREPROCESSING_FILE = "preprocessing.joblib"
METADATA_FILE = "metadata.json"
PREDICTIONS_FILE = "test_predictions.parquet"
SERIES_METRICS_FILE = "series_metrics.parquet"

#: Picks the version to register: (the model's directory, the clock) -> version.
ClaimVersion = Callable[[Location, datetime], str]


def model_directory(root: Location, tenant_id: str, model_name: str) -> Location:
    """Where the versions of a tenant's model are kept."""
    return root / tenant_id / model_name


def member_file(index: int) -> str:
    """The file of a blend's ``index``-th booster."""
    return MODEL_FILE if index == 0 else f"model-{index}.txt"


def quantile_file(alpha: float) -> str:
    """The file of the quantile booster for ``alpha``."""
    return f"quantile-{alpha:g}.txt"


def quantile_column(quantile: float) -> str:
    """The test-predictions column of a quantile: ``q0.1``."""
    return f"q{quantile:g}"


def claim_directory(parent: Location, now: datetime) -> str:
    """The first second from ``now`` whose directory this call creates: for runs with no
    orchestrator to ask (see ``Location.create_dir_exclusive`` for object stores)."""
    return first_free_version(now, lambda v: (parent / v).create_dir_exclusive())


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
        return feature_spec_of(self.metadata)


def feature_spec_of(metadata: dict[str, Any]) -> FeatureSpec:
    """How a model's features are built (models registered before the spec was saved read
    the horizon and season alone)."""
    stored = metadata.get("feature_spec")
    if stored:
        return FeatureSpec.from_dict(stored)
    return FeatureSpec(int(metadata["config"]["horizon"]), int(metadata["season"]))


def load_metadata(directory: Location) -> dict[str, Any]:
    """A model's ``metadata.json`` alone: what it reads and how, without its boosters."""
    metadata: dict[str, Any] = json.loads((directory / METADATA_FILE).read_text())
    return metadata


def load_artifact(directory: Location) -> ModelArtifact:
    metadata = load_metadata(directory)
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
