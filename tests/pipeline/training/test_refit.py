"""What an early-stopped booster does with the validation rows: refitted on training +
validation rows with its rounds grown with them (up to the job's ceiling), or served as
early stopping left it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from pipeline.config import RefitMethod, TrainingConfig
from pipeline.features.preprocess import PreparedData, preprocess
from pipeline.hyperparameters import NETWORK_PARAMETERS
from pipeline.store.feature_store import FeatureStore
from pipeline.training.blend import blend_predict
from pipeline.training.boosters import grown_rounds
from pipeline.training.fitters import (
    REFIT_COST,
    ROLLING_REFITS_COST,
    FitRequest,
    InProcessFitter,
    budget_plan,
)
from pipeline.training.fitting import Fitted, booster_params, fit_and_refit, trained_params
from pipeline.training.train import MemberPlan, assemble, train

ROUNDS = 300
BASE = {"n_estimators": ROUNDS, "learning_rate": 0.5, "num_leaves": 15, "objective": "regression"}


@pytest.fixture(scope="module")
def data(demo_store: FeatureStore) -> PreparedData:
    config = TrainingConfig.model_validate(
        {"feature_set": "forecast_basic", "target_variable": "load_kw"}
    )
    return preprocess(demo_store.load("forecast_basic"), config)


def fitted(data: PreparedData, how: RefitMethod) -> Fitted:
    return fit_and_refit(data, BASE, 5, 1, [], {}, how)


def test_a_refit_grows_early_stoppings_rounds_with_the_rows(data: PreparedData) -> None:
    result = fitted(data, "full")
    best = result.fit.best_iteration
    assert 1 < best < ROUNDS  # early stopping stopped it
    grown = grown_rounds(best, data.train_rows, len(data.validation.y))
    assert result.rounds == result.refitted.current_iteration() == grown > best
    test = data.test.X  # (test_binning checks the rows it trained on)
    assert not np.allclose(result.refitted.predict(test), result.fit.booster.predict(test))


def test_refit_rounds_grow_up_to_the_ceiling_and_no_further() -> None:
    assert grown_rounds(100, 700, 200) == 129
    assert grown_rounds(100, 700, 200, max_rounds=300) == 129
    assert grown_rounds(250, 700, 200, max_rounds=300) == 300
    assert grown_rounds(300, 700, 200, max_rounds=300) == 300  # early stopping hit it
    assert grown_rounds(40, 700, 200, max_rounds=20) == 40  # a search found more


def test_a_model_that_early_stopping_took_to_its_ceiling_refits_with_the_ceiling(
    data: PreparedData,
) -> None:
    config = TrainingConfig.model_validate(
        {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "hyperparameters": {"n_estimators": 20, "learning_rate": 0.05},
        }
    )
    model = train(data, config, num_threads=1)
    assert model.best_iteration == 20
    assert [m.rounds for m in model.members] == [20, 20]


def test_no_refit_serves_the_early_stopped_booster_at_its_best_round(data: PreparedData) -> None:
    result = fitted(data, "none")
    assert result.refitted is result.fit.booster
    assert result.rounds == result.fit.best_iteration


@pytest.mark.parametrize("how", ["full", "none"])
def test_a_model_forecasts_with_the_boosters_its_refit_method_makes(
    data: PreparedData, how: RefitMethod
) -> None:
    config = TrainingConfig.model_validate(
        {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "hyperparameters": {"n_estimators": 40, "learning_rate": 0.2},
            "refit": how,
        }
    )
    model = train(data, config, num_threads=1)
    validation = model.predict(data.validation.X)
    if how == "none":  # the served boosters made the validation part's forecasts
        np.testing.assert_allclose(validation, model.validation_predictions)
    else:  # boosters that learnt from the validation rows
        assert not np.allclose(validation, model.validation_predictions)
    grown = grown_rounds(model.best_iteration, data.train_rows, len(data.validation.y), 40)
    assert model.members[0].rounds == (model.best_iteration if how == "none" else grown)
    assert model.calibration is not None


@pytest.mark.parametrize(
    ("how", "rolling", "fits_per_share"),
    [
        ("full", True, 1 + REFIT_COST + ROLLING_REFITS_COST),
        ("full", False, 1 + REFIT_COST),
        ("none", False, 1),
    ],
)
def test_a_time_budget_leaves_room_for_the_refits_the_method_makes(
    how: RefitMethod, rolling: bool, fits_per_share: float
) -> None:
    requests = [FitRequest({"objective": o}, 50) for o in ("regression", "regression_l1")]
    planned = budget_plan(requests, 60.0, how, rolling, InProcessFitter(1))
    assert [r.seconds for r in planned] == pytest.approx([60.0 / (2 * fits_per_share)] * 2)


def test_a_member_planned_twice_is_fitted_once_and_counts_twice(data: PreparedData) -> None:
    asked: list[FitRequest] = []

    class Recording(InProcessFitter):
        def __call__(self, data: PreparedData, requests: Sequence[FitRequest]) -> list[Fitted]:
            asked.extend(requests)
            return super().__call__(data, requests)

    mean = MemberPlan("regression", BASE)
    median = MemberPlan("regression_l1", {**BASE, "objective": "regression_l1"})
    model = assemble(data, [mean, median, mean], (0.1, 0.5, 0.9), 5, Recording(1))
    assert [r.params["objective"] for r in asked] == ["regression", "regression_l1"]
    first, second, third = model.members
    assert first.booster is third.booster  # a search kept the defaults: one booster
    once = assemble(data, [mean, median], (0.1, 0.5, 0.9), 5, InProcessFitter(1))
    X = data.test.X
    weighted = (2 * np.asarray(first.booster.predict(X)) + second.booster.predict(X)) / 3
    assert np.allclose(blend_predict(model.members, X), weighted)
    assert not np.allclose(blend_predict(once.members, X), weighted)


def test_a_boosters_parameters_to_train_another_leave_out_its_rounds_and_network() -> None:
    """A data-parallel fit served with refit 'none' keeps its workers' network in its
    parameters: a backtest or final refit training on them alone had waited for peers."""
    import lightgbm as lgb

    booster = lgb.train(
        {"objective": "regression_l1", "num_leaves": 7, "verbose": -1, "num_threads": 1},
        lgb.Dataset(np.arange(60.0).reshape(30, 2), np.arange(30.0)),
        num_boost_round=3,
    )
    network = {"tree_learner": "data", "num_machines": 2, "machines": "10.0.0.1:1,10.0.0.2:1"}
    booster.params.update({**network, "pre_partition": True, "n_estimators": 300})
    params = trained_params(booster)
    assert not NETWORK_PARAMETERS & set(params)
    assert "n_estimators" not in params
    assert (params["objective"], params["num_leaves"]) == ("regression_l1", 7)
    # With the network kept, LightGBM refuses: "Cannot find any ip and port".
    again = lgb.train(params, lgb.Dataset(np.arange(60.0).reshape(30, 2), np.arange(30.0)), 2)
    assert again.num_trees() >= 1


def test_the_rounds_asked_for_are_lightgbms_own_name_when_both_are_given() -> None:
    """A search over num_iterations beside the default n_estimators 300: LightGBM trains
    the trial's, and the ceiling had been read as 300."""
    params, rounds = booster_params({"n_estimators": 300, "num_iterations": 40}, 1)
    assert rounds == 40
    assert not {"n_estimators", "num_iterations"} & set(params)
    assert booster_params({"n_estimators": 300}, 1)[1] == 300
