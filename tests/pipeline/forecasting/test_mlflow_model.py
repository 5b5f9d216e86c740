"""A registered model saved as an MLflow pyfunc model and loaded in a fresh process
forecasts what the service's predict does, a per-series model too, with the service's
code shipped inside the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from domain.jobs import ModelType
from pipeline.forecasting.mlflow_model import predictions_frame, save_service_model
from pipeline.forecasting.predict import predict_rows
from pipeline.models.artifacts import load_artifact
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from tests.mlflow_load import pyfunc_predict
from tests.pipeline.conftest import meters_store
from tests.pipeline.forecasting.test_predict import as_json_rows, raw_rows, trained
from tests.pipeline.training.test_per_series import config, meters

#: Two fresh processes importing MLflow (about 10 s each); the mirror's tests load a
#: per-series and a global model through the tracking server in the fast tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def per_series_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, Path]:
    from pipeline.context import JobContext
    from pipeline.graph.runner import run_in_process
    from pipeline.settings import PipelineSettings

    store = meters_store(tmp_path_factory, meters())
    context = JobContext("job-1", "tenant-a", ModelType.FORECAST, "meters", config(per_series=True))
    settings = PipelineSettings(
        features_dir=str(store.root), artifacts_dir=str(tmp_path_factory.mktemp("artifacts"))
    )
    saved, _ = run_in_process(context, settings)
    return store, Path(saved.artifact_uri)


def served_by_mlflow(directory: Path, rows: pd.DataFrame, work: Path) -> pd.DataFrame:
    """Save the model as MLflow's, load it in a fresh process, predict ``rows``; the
    process must have run the model's own copy of the service's code."""
    model = work / "mlflow-model"
    save_service_model(directory, model)
    predicted, code = pyfunc_predict(str(model), rows, work)
    assert code.is_relative_to(model), code
    return predicted


def assert_same(mlflow_frame: pd.DataFrame, service: pd.DataFrame) -> None:
    assert list(mlflow_frame.columns) == list(service.columns)
    assert len(mlflow_frame) == len(service) > 0
    assert (mlflow_frame["timestamp"] == service["timestamp"]).all()
    for column in service.columns.drop(["timestamp", "series", "anomaly"]):
        np.testing.assert_allclose(
            mlflow_frame[column].astype(float), service[column].astype(float), rtol=1e-9
        )


def test_a_global_model_with_quantiles_forecasts_as_the_service(
    demo_store: FeatureStore, tmp_path: Path
) -> None:
    directory = trained(demo_store, tmp_path / "artifacts", "forecast_basic", ModelType.FORECAST)
    artifact = load_artifact(Location(str(directory)))
    rows = raw_rows(demo_store, "forecast_basic", artifact)
    rows.loc[rows.index[-24:], "load_kw"] = np.nan  # the day to forecast
    service = predictions_frame(predict_rows(artifact, as_json_rows(rows)).rows)
    assert {"q0.1", "q0.9"} <= set(service.columns)
    assert_same(served_by_mlflow(directory, rows, tmp_path), service)


def test_a_per_series_model_forecasts_each_series_as_the_service(
    per_series_model: tuple[FeatureStore, Path], tmp_path: Path
) -> None:
    store, directory = per_series_model
    rows = store.load("meters").data.groupby("meter").tail(24 * 10).reset_index(drop=True)
    for row in rows.index[rows.groupby("meter").cumcount(ascending=False) < 6]:
        rows.loc[row, "load_kw"] = np.nan
    service = predictions_frame(
        predict_rows(load_artifact(Location(str(directory))), as_json_rows(rows)).rows
    )
    assert set(service["series"]) == {"m0", "m1", "m2"}
    mlflow_frame = served_by_mlflow(directory, rows, tmp_path)
    assert (mlflow_frame["series"] == service["series"]).all()
    assert_same(mlflow_frame, service)
