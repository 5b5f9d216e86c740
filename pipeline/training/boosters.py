"""LightGBM boosters with fixed rounds on rows of a prepared set."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from pipeline.features.preprocess import PreparedFeatures


def booster_on(
    data: PreparedFeatures,
    X: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    rounds: int,
) -> lgb.Booster:
    """A booster with fixed rounds on rows ``X`` of ``data``'s features (named, with its
    categories), no validation."""
    dataset = lgb.Dataset(
        X, y, feature_name=data.feature_names, categorical_feature=data.categorical or "auto"
    )
    return lgb.train(params, dataset, num_boost_round=rounds)
