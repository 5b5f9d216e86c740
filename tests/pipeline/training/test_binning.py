"""Binned data reused across fits and refits gives the boosters a fresh binning would."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData, preprocess
from pipeline.store.feature_store import FeatureStore
from pipeline.training.fitting import BinnedData, bin_data, booster_params, fit, fit_and_refit

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


def test_the_members_of_a_model_share_one_binning_of_their_refit_rows(
    data: PreparedData,
) -> None:
    binned: dict[tuple[tuple[str, object], ...], BinnedData] = {}
    mean = fit_and_refit(data, {**BASE, "objective": "regression"}, 5, 1, [], binned)
    median = fit_and_refit(data, {**BASE, "objective": "regression_l1"}, 5, 1, [], binned)
    assert len(binned) == 1
    shared = next(iter(binned.values()))

    rows = np.vstack([data.train.X, data.validation.X])
    target = np.concatenate([data.train.y, data.validation.y])
    for fitted, objective in ((mean, "regression"), (median, "regression_l1")):
        params = booster_params({**BASE, "objective": objective}, 1)[0]
        fresh = lgb.Dataset(
            rows,
            target,
            feature_name=data.feature_names,
            categorical_feature=data.categorical or "auto",
            params={"seed": 42, "feature_pre_filter": False},
        )
        alone = lgb.train(params, fresh, num_boost_round=fitted.rounds)
        assert fitted.rounds > fitted.fit.best_iteration  # grown with the validation rows
        np.testing.assert_array_equal(
            fitted.refitted.predict(data.test.X), alone.predict(data.test.X)
        )
    assert shared.refit.num_data() == len(target)
