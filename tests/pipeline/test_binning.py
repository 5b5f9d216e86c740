"""Binned data reused across fits gives the fits a fresh binning would."""

from __future__ import annotations

import pytest

from pipeline.config import TrainingConfig
from pipeline.feature_store import FeatureStore
from pipeline.preprocess import PreparedData, preprocess
from pipeline.train import bin_data, fit

BASE = {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 31}


@pytest.fixture(scope="module")
def data(demo_store: FeatureStore) -> PreparedData:
    config = TrainingConfig.model_validate(
        {"feature_set": "forecast_basic", "target_variable": "load_kw"}
    )
    return preprocess(demo_store.load("forecast_basic"), config)


@pytest.mark.parametrize(
    "tree_params",
    [
        {"min_child_samples": 90},
        {"min_child_samples": 5, "num_leaves": 8},
        {"subsample": 0.6, "subsample_freq": 1, "colsample_bytree": 0.5, "reg_lambda": 3.0},
    ],
)
def test_fits_on_shared_bins_equal_fresh_fits(
    data: PreparedData, tree_params: dict[str, float]
) -> None:
    binned = bin_data(data, BASE)
    params = {**BASE, **tree_params}
    shared = fit(data, params, 0, 1, binned=binned)
    fresh = fit(data, params, 0, 1)
    assert shared.curve == fresh.curve
    assert fit(data, BASE, 0, 1, binned=binned).curve == fit(data, BASE, 0, 1).curve


def test_a_fit_that_bins_differently_bins_afresh(data: PreparedData) -> None:
    binned = bin_data(data, BASE)
    coarse = {**BASE, "max_bin": 15}
    assert fit(data, coarse, 0, 1, binned=binned).curve == fit(data, coarse, 0, 1).curve
    assert fit(data, coarse, 0, 1).curve != fit(data, BASE, 0, 1).curve
    # the shared bins are untouched by the fit that could not use them
    assert fit(data, BASE, 0, 1, binned=binned).curve == fit(data, BASE, 0, 1).curve
