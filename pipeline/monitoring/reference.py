"""What a model's monitoring compares against, taken once per model and kept beside it.

Two things the model's own records fix for good: the MAE of each window of its test part
(from ``test_predictions.parquet``: the accuracy rule's baseline and its spread) and the
training distribution of its target and covariates (deciles of the training rows of the
feature-set version it was trained on: the shift rule's baseline). Both are written to
``monitoring_reference.json`` in the model's directory the first time they are needed, so
each is read from the data once per model, not once per evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.models.artifacts import PREDICTIONS_FILE, feature_spec_of, out_of_sample_from
from pipeline.monitoring.drift import Reference, window_errors
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

REFERENCE_FILE = "monitoring_reference.json"
#: Training rows read for the deciles (the most recent ones): enough for a decile's
#: edges to be exact to a fraction of a percent, bounded for sets of millions of rows.
MAX_REFERENCE_ROWS = 500_000


@dataclass(frozen=True)
class ModelReference:
    """A model's test windows' MAEs and its columns' training distributions."""

    test_windows: tuple[float, ...]
    target: Reference | None
    covariates: dict[str, Reference]

    @property
    def test_metrics(self) -> dict[str, float]:
        return {"mae": float(np.mean(self.test_windows))} if self.test_windows else {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "test_windows": list(self.test_windows),
            "target": self.target.as_dict() if self.target else None,
            "covariates": {name: r.as_dict() for name, r in self.covariates.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelReference:
        target = data.get("target")
        return cls(
            test_windows=tuple(data["test_windows"]),
            target=Reference.from_dict(target) if target else None,
            covariates={n: Reference.from_dict(r) for n, r in data["covariates"].items()},
        )


def model_reference(
    model_dir: Location, metadata: dict[str, Any], store: FeatureStore
) -> ModelReference:
    """The model's reference, read from its directory or taken now and written there."""
    kept = model_dir / REFERENCE_FILE
    if kept.is_file():
        return ModelReference.from_dict(json.loads(kept.read_text()))
    reference = take_reference(model_dir, metadata, store)
    kept.write_text(json.dumps(reference.as_dict()))
    return reference


def take_reference(
    model_dir: Location, metadata: dict[str, Any], store: FeatureStore
) -> ModelReference:
    """The test windows' MAEs from the test predictions, the deciles from the training rows
    (train start to test start of the version the model was trained on)."""
    predictions = (model_dir / PREDICTIONS_FILE).read_parquet().to_pandas()
    horizon = feature_spec_of(metadata).horizon
    windows = window_errors(
        pd.to_datetime(predictions["timestamp"], utc=True).to_numpy(),
        predictions["actual"].to_numpy(dtype=float),
        predictions["predicted"].to_numpy(dtype=float),
        horizon,
    )
    lineage = metadata["lineage"]
    schema = store.schema(lineage["feature_set"], lineage.get("feature_set_version"))
    training = store.load(
        schema.name,
        out_of_sample_from(metadata).to_pydatetime(),
        version=schema.pinned_version,
        start=pd.Timestamp(lineage["train_start"]).to_pydatetime(),
        columns=[schema.target_column, *schema.covariates],
    ).data
    if len(training) > MAX_REFERENCE_ROWS:  # by series: the most recent of all, not the last
        latest = training[schema.timestamp_column].rank(method="first", ascending=False)
        training = training[latest <= MAX_REFERENCE_ROWS]
    covariates = {
        name: reference
        for name in schema.covariates
        if (reference := Reference.of(_numbers(training[name]))) is not None
    }
    return ModelReference(
        test_windows=tuple(float(w) for w in windows),
        target=Reference.of(_numbers(training[schema.target_column])),
        covariates=covariates,
    )


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
