"""Feature stores with the demo sets, made once per session through the upload path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.demo import ensure_demo_feature_sets
from pipeline.feature_store import FeatureStore


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    store = FeatureStore(tmp_path_factory.mktemp("features"))
    assert ensure_demo_feature_sets(store) == ["forecast_basic", "anomaly_basic"]
    return store


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return FeatureStore(tmp_path / "features")
