"""The submission's row check never refuses a job its preprocess stage would take: it
agrees with preprocess on windows of a one-series set, hourly and monthly, whose ends fall
on rows or between them, with and without history before them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.validation import check_enough_rows
from domain.errors import InvalidRequest, PipelineError
from pipeline.config import TrainingConfig
from pipeline.features.preprocess import preprocess
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore


def accepted(store: FeatureStore, config: TrainingConfig) -> tuple[bool, bool]:
    """(the check lets it through, preprocess takes it)."""
    schema = store.schema("s")
    assert schema.step_seconds is not None
    try:
        check_enough_rows(config, schema, schema.step_seconds)
        checked = True
    except InvalidRequest:
        checked = False
    try:
        preprocess(store.load("s", config.end_date), config)
        prepared = True
    except PipelineError:
        prepared = False
    return checked, prepared


@pytest.mark.parametrize("offset", ["0min", "30min"])
@pytest.mark.parametrize("history_days", [0, 30])
def test_hourly_windows(tmp_path: Path, offset: str, history_days: int) -> None:
    store = FeatureStore(Location(str(tmp_path)))
    data = load_series(seed=2, hours=24 * 60)
    store.put("s", data, timestamp_column="timestamp", target_column="load_kw")
    start = data["timestamp"].iloc[0] + pd.Timedelta(days=history_days) + pd.Timedelta(offset)
    for hours in range(150, 260, 7):
        config = TrainingConfig(
            feature_set="s",
            target_variable="load_kw",
            start_date=start.isoformat(),
            end_date=(start + pd.Timedelta(hours=hours)).isoformat(),
        )
        checked, prepared = accepted(store, config)
        assert checked or not prepared, f"{hours} hours refused, though preprocess takes them"


def test_monthly_windows(tmp_path: Path) -> None:
    store = FeatureStore(Location(str(tmp_path)))
    months = pd.date_range("2000-01-01", periods=260, freq="MS", tz="UTC")
    data = pd.DataFrame({"timestamp": months, "load_kw": 100 + np.sin(np.arange(260))})
    store.put("s", data, timestamp_column="timestamp", target_column="load_kw")
    for count in range(160, 260, 6):
        end = months[count - 1] + pd.Timedelta(days=1)
        config = TrainingConfig(
            feature_set="s", target_variable="load_kw", horizon=3, end_date=end.isoformat()
        )
        checked, prepared = accepted(store, config)
        assert checked or not prepared, f"{count} months refused, though preprocess takes them"
