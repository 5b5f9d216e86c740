"""A detection of a window scores its rows as ``predict_rows`` scores the same rows with
the same history, chunk by chunk, and refuses a window or a model it cannot score."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from domain.errors import InvalidRequest
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.forecasting.batch import CHUNK_SERIES
from pipeline.forecasting.detection import (
    CHUNK_ROWS,
    check_detection,
    detect_chunk,
    gathered_events,
    plan_detection,
    read_window,
    series_per_chunk,
)
from pipeline.forecasting.predict import history_needed, predict_rows
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import PREDICTIONS_FILE, ModelArtifact, load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from tests.pipeline.forecasting.test_predict import as_json_rows

SMALL = {"n_estimators": 60, "learning_rate": 0.2}


@pytest.fixture(scope="module")
def detector_dir(demo_store: FeatureStore, tmp_path_factory: pytest.TempPathFactory) -> Location:
    """The directory of a small anomaly model of the demo set with labelled anomalies."""
    context = JobContext(
        job_id="job-1",
        tenant_id="tenant-a",
        model_type=ModelType.ANOMALY,
        model_name="anomalies",
        config=TrainingConfig(
            feature_set="anomaly_basic",
            target_variable="load_kw",
            horizon=1,
            quantiles=[],
            hyperparameters=SMALL,
        ),
    )
    root = tmp_path_factory.mktemp("detections")
    settings = PipelineSettings(features_dir=str(demo_store.root), artifacts_dir=str(root))
    saved, _ = run_in_process(context, settings)
    return Location(saved.artifact_uri)


@pytest.fixture(scope="module")
def detector(detector_dir: Location) -> ModelArtifact:
    return load_artifact(detector_dir)


def last_weeks(store: FeatureStore, weeks: int) -> tuple[datetime, datetime]:
    """A window of the set's last ``weeks`` weeks (its test part, where it has anomalies)."""
    last = store.keys("anomaly_basic").last
    assert last is not None
    end = last - pd.Timedelta(days=1)
    return (end - pd.Timedelta(weeks=weeks)).to_pydatetime(), end.to_pydatetime()


def test_a_window_scores_as_predict_rows_with_the_same_history(
    demo_store: FeatureStore, detector: ModelArtifact
) -> None:
    start, end = last_weeks(demo_store, 3)
    window, [chunk] = plan_detection(
        demo_store, detector.metadata, "anomaly_basic", None, start, end
    )
    stored = detector.metadata["anomaly_detector"]
    spec = detector.feature_spec
    # Back far enough for the features, the trailing scale and an event's suppression.
    reach = history_needed(spec) + stored["calibration"]["window"] + stored["suppress"]
    assert window.start - chunk.start == reach * spec.step
    detected = detect_chunk(detector, read_window(demo_store, detector.metadata, chunk), window)
    rows = detected.rows
    assert list(rows.columns) == [
        "series",
        "timestamp",
        "actual",
        "predicted",
        "anomaly_score",
        "anomaly",
        "label",
    ]
    assert rows["timestamp"].min() == window.start
    assert rows["timestamp"].max() == window.end - spec.step
    assert len(rows) == round((window.end - window.start) / spec.step)
    assert rows["series"].isna().all()

    raw = demo_store.load("anomaly_basic", chunk.end, start=chunk.start).data
    served = predict_rows(detector, as_json_rows(raw.drop(columns=["is_anomaly"])))
    inside = [p for p in served.rows if window.start <= p.timestamp < window.end]
    assert [p.timestamp for p in inside] == list(rows["timestamp"])
    np.testing.assert_allclose([p.predicted for p in inside], rows["predicted"], rtol=1e-12)
    scores = [p.anomaly_score for p in inside]
    np.testing.assert_allclose(np.array(scores, dtype=float), rows["anomaly_score"])
    assert [p.anomaly for p in inside] == rows["anomaly"].tolist()
    assert rows["anomaly"].any(), "the demo set's last weeks have anomalies"
    assert rows["label"].any()
    assert served.events is not None
    overlapping = [e for e in served.events if e.end >= window.start and e.start < window.end]
    events = detected.events
    assert events["start"].tolist() == [e.start for e in overlapping]
    assert events["peak_score"].tolist() == [e.peak_score for e in overlapping]
    assert events["rows"].tolist() == [e.rows for e in overlapping]
    # Every flagged row of the window lies in one of its events.
    for at in rows.loc[rows["anomaly"], "timestamp"]:
        assert ((events["start"] <= at) & (at <= events["end"])).any()
    assert gathered_events([events, events.iloc[:0]]).equals(events)


def test_the_test_parts_scores_are_those_a_detection_serves(
    demo_store: FeatureStore, detector: ModelArtifact, detector_dir: Location
) -> None:
    """The registered metrics describe what users get: the test part's stored scores
    and flags are those a detection over the whole set gives its rows."""
    stored = (detector_dir / PREDICTIONS_FILE).read_parquet().to_pandas()
    window, plan = plan_detection(demo_store, detector.metadata, "anomaly_basic", None, None, None)
    served = pd.concat(
        detect_chunk(detector, read_window(demo_store, detector.metadata, chunk), window).rows
        for chunk in plan
    )
    both = stored.merge(served, on="timestamp", suffixes=("_test", "_served"))
    assert len(both) == len(stored) > 0
    np.testing.assert_allclose(both["predicted_test"], both["predicted_served"], rtol=1e-9)
    np.testing.assert_allclose(both["anomaly_score_test"], both["anomaly_score_served"], rtol=1e-9)
    assert both["anomaly_test"].tolist() == both["anomaly_served"].tolist()
    assert both["anomaly_test"].any()


def test_the_default_window_is_the_whole_set(
    demo_store: FeatureStore, detector: ModelArtifact
) -> None:
    keys = demo_store.keys("anomaly_basic")
    assert keys.first is not None
    assert keys.last is not None
    window = check_detection(demo_store, detector.metadata, "anomaly_basic", None, None, None)
    step = detector.feature_spec.step
    assert (window.start, window.end) == (
        keys.first.tz_convert("UTC"),
        keys.last.tz_convert("UTC") + step,
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [(datetime(1, 1, 1, tzinfo=UTC), None), (None, datetime(9999, 12, 31, tzinfo=UTC))],
)
def test_a_window_beyond_the_times_pandas_holds_is_the_sets_span(
    demo_store: FeatureStore,
    detector: ModelArtifact,
    start: datetime | None,
    end: datetime | None,
) -> None:
    """Years 1 and 9999 pass the API's checks; the window's arithmetic had overflowed
    (a 500)."""
    whole = check_detection(demo_store, detector.metadata, "anomaly_basic", None, None, None)
    window, plan = plan_detection(demo_store, detector.metadata, "anomaly_basic", None, start, end)
    assert window == whole
    assert plan


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"feature_set": "nothing_here"}, "feature_set"),
        ({"series": ["m9"]}, "series"),
        ({"start": "2030-01-01T00:00:00Z"}, "start"),
        ({"end": "2000-01-01T00:00:00Z"}, "end"),
        ({"start": "2025-06-02T00:00:00Z", "end": "2025-06-01T00:00:00Z"}, "end"),
        ({"forecasting_model": True}, "model_type"),
    ],
)
def test_refuses_what_it_cannot_score(
    demo_store: FeatureStore, detector: ModelArtifact, change: dict[str, Any], field: str
) -> None:
    metadata = detector.metadata
    if change.get("forecasting_model"):
        metadata = {k: v for k, v in metadata.items() if not k.startswith("anomaly_")}
    with pytest.raises(InvalidRequest) as refused:
        check_detection(
            demo_store,
            metadata,
            change.get("feature_set", "anomaly_basic"),
            change.get("series"),
            pd.Timestamp(change["start"]).to_pydatetime() if "start" in change else None,
            pd.Timestamp(change["end"]).to_pydatetime() if "end" in change else None,
        )
    assert refused.value.field == field


def test_a_chunk_scores_about_a_million_rows() -> None:
    a_year_of_5_minutes = 365 * 288
    assert series_per_chunk(a_year_of_5_minutes) == 9  # 100 series: 12 tasks, not 1
    assert series_per_chunk(24 * 14) == CHUNK_SERIES
    assert series_per_chunk(CHUNK_ROWS * 2) == 1
