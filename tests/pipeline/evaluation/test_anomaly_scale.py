"""An anomaly job's test part is scored as served: the validation rows count as fitted,
so an incident labelled at the validation part's end (whose residuals the calibration
leaves out) does not widen the test part's trailing scale either. That the scores are
the served ones is tested in tests/pipeline/forecasting/test_detection.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from pipeline.config import TrainingConfig
from pipeline.evaluation.evaluate import _detect
from pipeline.features.preprocess import preprocess
from pipeline.store.feature_store import FeatureFrame, FeatureStore

CONFIG = TrainingConfig(feature_set="anomaly_basic", target_variable="load_kw", horizon=1)


def test_an_incident_labelled_at_the_validation_parts_end_does_not_mute_the_test_part(
    demo_store: FeatureStore,
) -> None:
    frame = demo_store.load("anomaly_basic")  # its own labels replaced below
    validation = preprocess(frame, CONFIG).validation.timestamps
    stamps = frame.data["timestamp"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    labels = (stamps > validation[-120]) & (stamps <= validation[-1])  # its last 5 days
    data = preprocess(FeatureFrame(frame.schema, frame.data.assign(is_anomaly=labels)), CONFIG)
    assert (~data.validation.normal).sum() == 119
    # Residuals of one model, set here: unit noise, ten times that in the labelled rows
    # (an incident the team marked), and a spike of 8 a day into the test part.
    rng = np.random.default_rng(0)
    residual = rng.standard_normal(len(data.validation.y))
    residual[~data.validation.normal] *= 10
    model = SimpleNamespace(validation_predictions=data.validation.y - residual)
    test_residual = rng.standard_normal(len(data.test.y))
    test_residual[24] = 8.0
    _, detection = _detect(data, data.test.y - test_residual, CONFIG, model)
    # Read with the incident, the trailing scale is about ten times wider: no alarm.
    assert detection.alarms[24]
    weeks = len(data.test.y) / 168
    assert detection.alarms.sum() <= 2 * 0.5 * weeks  # about the default's half a week
