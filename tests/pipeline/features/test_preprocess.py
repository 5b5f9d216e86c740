"""Time-ordered splits; the scaler learns from the training part only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from domain.errors import PipelineError
from pipeline.config import TrainingConfig
from pipeline.features.build import build_features
from pipeline.features.preprocess import preprocess
from pipeline.store.feature_store import FeatureFrame, FeatureStore


def config(**overrides: object) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {"feature_set": "forecast_basic", "target_variable": "load_kw", **overrides}
    )


def test_split_is_time_ordered_with_requested_fractions(demo_store: FeatureStore) -> None:
    data = preprocess(
        demo_store.load("forecast_basic"), config(validation_split=0.2, test_split=0.1)
    )
    assert data.train.timestamps.max() < data.validation.timestamps.min()
    assert data.validation.timestamps.max() < data.test.timestamps.min()
    total = len(data.train.y) + len(data.validation.y) + len(data.test.y)
    assert len(data.test.y) / total == pytest.approx(0.1, abs=0.01)
    assert len(data.validation.y) / total == pytest.approx(0.2, abs=0.01)
    assert pd.Series(data.train.timestamps).is_monotonic_increasing


def test_scaler_is_fitted_on_training_rows_only(demo_store: FeatureStore) -> None:
    frame = demo_store.load("forecast_basic")
    cfg = config()
    data = preprocess(frame, cfg)
    raw = build_features(frame, data.spec).features.to_numpy()
    n_train = len(data.train.y)
    np.testing.assert_allclose(data.scaler.mean_, np.nanmean(raw[:n_train], axis=0))
    assert not np.allclose(data.scaler.mean_, np.nanmean(raw, axis=0))
    np.testing.assert_allclose(np.nanmean(data.train.X, axis=0), 0, atol=1e-9)


def test_too_short_a_range_is_a_pipeline_error(demo_store: FeatureStore) -> None:
    cfg = config(start_date="2025-06-01T00:00:00Z", end_date="2025-06-03T00:00:00Z")
    with pytest.raises(PipelineError, match=r"only \d+ \w+ rows in the selected range"):
        preprocess(demo_store.load("forecast_basic"), cfg)


def test_empty_range_is_a_pipeline_error(demo_store: FeatureStore) -> None:
    cfg = config(start_date="2030-01-01T00:00:00Z", end_date="2030-02-01T00:00:00Z")
    with pytest.raises(PipelineError, match="no rows"):
        preprocess(demo_store.load("forecast_basic"), cfg)


def test_rows_labelled_as_anomalies_are_not_fitted_on_but_scored(demo_store: FeatureStore) -> None:
    frame = demo_store.load("anomaly_basic")
    cfg = config(feature_set="anomaly_basic", horizon=1)
    data = preprocess(frame, cfg)
    plain = preprocess(FeatureFrame(frame.schema, frame.data.assign(is_anomaly=False)), cfg)
    stamps = frame.data["timestamp"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    labelled = stamps[frame.data["is_anomaly"].to_numpy()]
    # The training part lost exactly its labelled rows ...
    trained = plain.train.timestamps
    assert np.isin(trained, labelled).sum() > 50
    np.testing.assert_array_equal(data.train.timestamps, trained[~np.isin(trained, labelled)])
    assert data.train.normal.all()
    # ... the validation and test parts keep theirs, to be scored on ...
    for part, same in ((data.validation, plain.validation), (data.test, plain.test)):
        np.testing.assert_array_equal(part.timestamps, same.timestamps)
        assert not part.normal.all()
    # ... and a fit on validation rows (early stopping, refits) reads the unlabelled ones.
    kept = data.validation.normal
    fitted = data.validation.unlabelled()
    np.testing.assert_array_equal(fitted.timestamps, data.validation.timestamps[kept])
    np.testing.assert_array_equal(fitted.X, data.validation.X[kept])
    assert plain.validation.unlabelled() is plain.validation


def test_a_validation_part_labelled_throughout_is_a_pipeline_error(
    demo_store: FeatureStore,
) -> None:
    frame = demo_store.load("anomaly_basic")
    cfg = config(feature_set="anomaly_basic", horizon=1)
    validation = preprocess(frame, cfg).validation.timestamps
    stamps = frame.data["timestamp"].dt.tz_convert(None)
    inside = stamps.between(validation.min(), validation.max()).to_numpy()
    labelled = FeatureFrame(frame.schema, frame.data.assign(is_anomaly=inside))
    # Not LightGBM's "num_data > 0" from the train stage: the rows it would fit on.
    with pytest.raises(PipelineError, match="only 0 validation rows not labelled as anomalies"):
        preprocess(labelled, cfg)
