"""LightGBM boosters with fixed rounds on rows of a prepared set, and how rounds grow with rows."""

from __future__ import annotations

import math
from typing import Any

import lightgbm as lgb
import numpy as np

from pipeline.features.preprocess import PreparedFeatures


def grown_rounds(
    best_iteration: int, train_rows: int, validation_rows: int, max_rounds: int | None = None
) -> int:
    """Rounds for a refit on ``train_rows + validation_rows``: early stopping's count on
    ``train_rows``, grown with the rows (more data supports more rounds at the same rate),
    up to ``max_rounds`` (the job's ceiling, ``n_estimators``) when early stopping's count
    was below it."""
    grown = max(1, math.ceil(best_iteration * (train_rows + validation_rows) / train_rows))
    return grown if max_rounds is None else min(grown, max(max_rounds, best_iteration))


def booster_on(
    data: PreparedFeatures, X: np.ndarray, y: np.ndarray, params: dict[str, Any], rounds: int
) -> lgb.Booster:
    """A booster with fixed rounds on rows ``X`` of ``data``'s features (named, with its
    categories), no validation."""
    dataset = lgb.Dataset(
        X, y, feature_name=data.feature_names, categorical_feature=data.categorical or "auto"
    )
    return lgb.train(params, dataset, num_boost_round=rounds)
