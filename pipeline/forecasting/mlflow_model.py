"""A registered model as an MLflow pyfunc model that forecasts as the service does.

The MLflow model carries the model's artifact directory (every booster, per series too,
the scaler, the metadata) as its artifact ``service`` and the service's own ``pipeline``
and ``domain`` packages as its code, so ``mlflow.pyfunc.load_model(...).predict(rows)``
builds the features and blends the boosters with the code the service's predict endpoint
runs: the same forecasts for the same rows. Its input is a DataFrame of feature-set rows
(as the endpoint's ``rows``); its output has one row per forecast: ``timestamp``,
``series``, ``predicted``, ``actual``, ``anomaly``, ``anomaly_score`` and one ``q<level>``
column per quantile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc.model import PythonModel

import domain
import pipeline
from pipeline.forecasting.predict import Prediction, predict_rows
from pipeline.models.artifacts import ModelArtifact, load_artifact
from pipeline.storage import Location

#: The name of the model's artifact directory inside the MLflow model.
SERVICE_ARTIFACT = "service"
#: What loading the model needs installed (named: inferring them costs a subprocess).
REQUIREMENTS = ("lightgbm", "numpy", "pandas", "pyarrow", "scikit-learn", "joblib", "pydantic")


class ServiceModel(PythonModel):
    """The service's predict endpoint over one registered model's artifact directory."""

    def load_context(self, context: Any) -> None:
        self._artifact: ModelArtifact = load_artifact(Location(context.artifacts[SERVICE_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        rows = [{str(k): v for k, v in row.items()} for row in model_input.to_dict("records")]
        return predictions_frame(predict_rows(self._artifact, rows).rows)


def predictions_frame(predictions: list[Prediction]) -> pd.DataFrame:
    """Predictions as a table, one ``q<level>`` column per quantile."""
    return pd.DataFrame(
        [
            {
                "timestamp": p.timestamp,
                "series": p.series,
                "predicted": p.predicted,
                "actual": p.actual,
                "anomaly": p.anomaly,
                "anomaly_score": p.anomaly_score,
                **{f"q{level}": value for level, value in (p.quantiles or {}).items()},
            }
            for p in predictions
        ]
    )


def save_service_model(artifact_directory: Path, path: Path) -> None:
    """Save the model whose artifact directory is ``artifact_directory`` as an MLflow
    pyfunc model at ``path``, with the service's code."""
    import importlib.metadata

    requirements = [f"{name}=={importlib.metadata.version(name)}" for name in REQUIREMENTS]
    code = [str(Path(package.__path__[0])) for package in (pipeline, domain)]
    mlflow.pyfunc.save_model(
        str(path),
        python_model=ServiceModel(),
        artifacts={SERVICE_ARTIFACT: str(artifact_directory)},
        code_paths=code,
        pip_requirements=requirements,
    )
