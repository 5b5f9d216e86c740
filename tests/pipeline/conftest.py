"""Feature stores with the demo sets, made once per session through the upload path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.storage import Location
from pipeline.store.demo import ensure_demo_feature_sets
from pipeline.store.feature_store import FeatureStore


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    store = FeatureStore(Location(str(tmp_path_factory.mktemp("features"))))
    assert ensure_demo_feature_sets(store) == ["forecast_basic", "anomaly_basic"]
    return store


def meters_store(factory: pytest.TempPathFactory, meters: pd.DataFrame) -> FeatureStore:
    """A local store holding ``meters`` (timestamp, load_kw, meter) as the set "meters"."""
    store = FeatureStore(Location(str(factory.mktemp("features"))))
    store.put(
        "meters",
        meters,
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FeatureStore:
    """An empty store on a local disk, then on an S3-compatible server."""
    if request.param == "local":
        return FeatureStore(Location(str(tmp_path / "features")))
    bucket: str = request.getfixturevalue("s3_bucket")
    return FeatureStore(Location(bucket.format("features")))
