"""A model's monitoring reference over a set larger than it reads: the training rows it
keeps for the shift rule's deciles are the most recent of every series, not the last
series' (rows come sorted by series). Real model trained in process, real store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from domain.jobs import ModelType
from pipeline.context import JobContext
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import load_metadata, out_of_sample_from
from pipeline.monitoring import reference
from pipeline.monitoring.drift import Reference
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from tests.pipeline.conftest import meters_store
from tests.pipeline.training.test_per_series import config, meters

KEPT = 300


def test_the_reference_keeps_the_most_recent_rows_of_every_series(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = meters_store(tmp_path_factory, meters())
    context = JobContext("job-1", "tenant-a", ModelType.FORECAST, "meters", config())
    settings = PipelineSettings(
        features_dir=str(store.root), artifacts_dir=str(tmp_path_factory.mktemp("artifacts"))
    )
    saved, _ = run_in_process(context, settings)
    model_dir = Location(saved.artifact_uri)
    metadata = load_metadata(model_dir)
    monkeypatch.setattr(reference, "MAX_REFERENCE_ROWS", KEPT)

    taken = reference.take_reference(model_dir, metadata, store)

    rows = store.load("meters").data
    train_start = pd.Timestamp(metadata["lineage"]["train_start"])
    training = rows[
        (rows["timestamp"] >= train_start) & (rows["timestamp"] < out_of_sample_from(metadata))
    ]
    latest = training[training["timestamp"] >= np.sort(training["timestamp"].unique())[-KEPT // 3]]
    assert latest["meter"].value_counts().to_dict() == {"m0": 100, "m1": 100, "m2": 100}
    assert taken.target == Reference.of(latest["load_kw"].to_numpy(float))
    last_series = training.tail(KEPT)  # what was kept: the ten-times meter alone
    assert taken.target != Reference.of(last_series["load_kw"].to_numpy(float))
