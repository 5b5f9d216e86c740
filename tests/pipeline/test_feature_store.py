"""The feature store validates what it stores and writes atomically."""

from __future__ import annotations

import pandas as pd
import pytest

from domain.errors import FeatureSetNotFound, InvalidFeatureSet
from pipeline.demo import load_series, with_anomalies
from pipeline.feature_store import FeatureStore


def test_round_trip_keeps_schema_and_rows(store: FeatureStore) -> None:
    table = load_series(seed=1, hours=100)
    schema = store.put("s", table, timestamp_column="timestamp", target_column="load_kw")
    assert schema.covariates == ["temperature_c", "humidity_pct"]
    assert schema.rows == 100
    loaded = store.load("s")
    assert loaded.schema == schema
    pd.testing.assert_series_equal(loaded.data["load_kw"], table["load_kw"])
    assert str(loaded.data["timestamp"].dt.tz) == "UTC"
    assert [s.name for s in store.list()] == ["s"]


def test_load_stops_before_end(store: FeatureStore) -> None:
    store.put(
        "s", load_series(seed=1, hours=100), timestamp_column="timestamp", target_column="load_kw"
    )
    end = pd.Timestamp("2024-01-02", tz="UTC").to_pydatetime()
    assert len(store.load("s", end=end).data) == 24


def test_labels_are_not_covariates(store: FeatureStore) -> None:
    table = with_anomalies(load_series(seed=1, hours=2000), seed=2)
    schema = store.put("a", table, timestamp_column="timestamp", target_column="load_kw")
    assert schema.label_column == "is_anomaly"
    assert "is_anomaly" not in schema.covariates


def test_demo_sets_are_deterministic() -> None:
    pd.testing.assert_frame_equal(load_series(seed=7, hours=500), load_series(seed=7, hours=500))
    assert len(load_series(seed=7)) >= 365 * 24


def test_replacing_a_set_and_failed_replacement_keeps_the_old_one(store: FeatureStore) -> None:
    store.put(
        "s", load_series(seed=1, hours=50), timestamp_column="timestamp", target_column="load_kw"
    )
    with pytest.raises(InvalidFeatureSet):
        store.put(
            "s", load_series(seed=1, hours=50), timestamp_column="ts", target_column="load_kw"
        )
    assert store.schema("s").rows == 50
    store.put(
        "s", load_series(seed=1, hours=70), timestamp_column="timestamp", target_column="load_kw"
    )
    assert store.schema("s").rows == 70
    assert store.root.children() == ["s"]
    assert (store.root / "s").children() == sorted(["schema.json", store.schema("s").data_file])


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 129])
def test_unsafe_names_are_refused(store: FeatureStore, name: str) -> None:
    with pytest.raises(InvalidFeatureSet):
        store.put(
            name,
            load_series(seed=1, hours=10),
            timestamp_column="timestamp",
            target_column="load_kw",
        )
    assert not store.exists(name)


def test_unknown_set_is_not_found(store: FeatureStore) -> None:
    with pytest.raises(FeatureSetNotFound):
        store.load("missing")
