"""The residuals that calibrate quantiles: rolling origins over the validation part."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData, Split, preprocess
from pipeline.scoring.windows import WINDOWS, window_origins
from pipeline.store.feature_store import FeatureStore
from pipeline.training import calibration
from pipeline.training.blend import Member, blend_predict
from pipeline.training.boosters import booster_on, grown_rounds
from pipeline.training.calibration import calibration_forecasts
from pipeline.training.fitting import Fit, fit
from pipeline.training.quantiles import window_scores
from pipeline.training.train import TrainedModel, train

CONFIG = TrainingConfig(
    feature_set="forecast_basic",
    target_variable="load_kw",
    hyperparameters={"n_estimators": 40, "learning_rate": 0.2},
)


@pytest.fixture(scope="module")
def data(demo_store: FeatureStore) -> PreparedData:
    return preprocess(demo_store.load("forecast_basic"), CONFIG)


@pytest.fixture(scope="module")
def model(data: PreparedData) -> TrainedModel:
    return train(data, CONFIG, num_threads=1)


def test_windows_cut_the_distinct_times_into_equal_runs() -> None:
    stamps = np.repeat(np.arange(10).astype("datetime64[h]"), 3)  # three series
    assert window_origins(stamps, 4) == [stamps[6], stamps[15], stamps[24]]  # times 2, 5, 8
    assert window_origins(stamps[:3], 4) == []  # one time: one window


@pytest.fixture(scope="module")
def fits(data: PreparedData) -> list[Fit]:
    params = {**CONFIG.lightgbm_params(), "objective": "regression"}
    return [fit(data, params, CONFIG.early_stopping_rounds, num_threads=1)]


def test_each_window_is_forecast_by_the_members_refitted_before_it(
    data: PreparedData, fits: list[Fit]
) -> None:
    early = np.asarray(fits[0].booster.predict(data.validation.X))  # stands in for the first
    forecasts = calibration_forecasts(data, fits, early, num_threads=1)
    origins = window_origins(data.validation.timestamps, WINDOWS)
    first = data.validation.timestamps < origins[0]
    assert np.array_equal(forecasts[first], early[first])
    # The last window, recomputed by hand: the member on every row before its origin,
    # its rounds grown with them.
    X = np.vstack([data.train.X, data.validation.X])
    y = np.concatenate([data.train.y, data.validation.y])
    before = np.concatenate([data.train.timestamps, data.validation.timestamps]) < origins[-1]
    rounds = grown_rounds(
        fits[0].best_iteration, data.train_rows, int(before.sum()) - data.train_rows
    )
    params = {**fits[0].params, "num_threads": 1}
    del params["num_iterations"]
    member = Member("regression", booster_on(data, X[before], y[before], params, rounds), rounds)
    last = data.validation.timestamps >= origins[-1]
    assert np.allclose(forecasts[last], blend_predict([member], data.validation.X[last]))
    assert not np.allclose(forecasts[last], early[last])


def test_a_large_job_calibrates_on_the_early_stopped_forecasts(
    data: PreparedData, fits: list[Fit], monkeypatch: pytest.MonkeyPatch
) -> None:
    early = np.asarray(fits[0].booster.predict(data.validation.X))
    assert calibration_forecasts(data, fits, early, 1) is not early
    monkeypatch.setattr(calibration, "MAX_ROWS", data.train_rows)
    assert calibration_forecasts(data, fits, early, 1) is early


def test_early_stopped_members_served_as_they_are_calibrate_on_their_own_forecasts(
    data: PreparedData, fits: list[Fit]
) -> None:
    early = np.asarray(fits[0].booster.predict(data.validation.X))
    assert calibration_forecasts(data, fits, early, 1, "none") is early


def test_the_default_model_is_calibrated_around_its_point_forecast(
    data: PreparedData, model: TrainedModel
) -> None:
    assert model.calibration is not None
    assert model.calibration.offsets["0.5"] == pytest.approx(0.0, abs=1e-12)
    point = model.predict(data.test.X)
    bounds = model.predict_quantiles(data.test.X, point)
    assert bounds is not None
    assert np.allclose(bounds[:, 1], point)
    assert (bounds[:, 0] < point).all()
    assert (bounds[:, 2] > point).all()


def test_the_calibrations_coverage_is_reported_on_each_window(
    data: PreparedData, model: TrainedModel
) -> None:
    windows = model.calibration_windows
    assert set(windows) == {"coverage_80", "interval_width_80"}
    assert len(windows["coverage_80"]) == WINDOWS
    # The windows' residuals made the quantiles: together they cover about 80 %.
    assert np.mean(windows["coverage_80"]) == pytest.approx(0.8, abs=0.03)
    assert all(width > 0 for width in windows["interval_width_80"])
    assert model.summary().calibration_windows == windows


def test_window_scores_are_each_windows_own() -> None:
    stamps = np.arange(8).astype("datetime64[h]")
    actual = np.array([0.0, 0, 0, 0, 0, 0, 5, 5])
    split = Split(np.zeros((8, 1)), actual, stamps, None, None, np.zeros(8))
    bounds = np.column_stack([np.full(8, -1.0), np.zeros(8), np.array([1.0] * 6 + [3.0] * 2)])
    scores = window_scores(split, bounds, (0.1, 0.5, 0.9))
    assert scores == {
        "coverage_80": [1.0, 1.0, 1.0, 0.0],
        "interval_width_80": [2.0, 2.0, 2.0, 4.0],
    }
