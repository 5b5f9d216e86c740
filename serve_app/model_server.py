"""The prediction deployment: loads registered models and keeps the recent ones in memory.

A separate Ray Serve deployment from the API ingress, so it can scale on its own. Loaded
artifacts are kept in an LRU cache keyed by artifact location (artifacts are immutable:
a version is never rewritten) and bounded by their size on disk
(``TRAINING_MODEL_CACHE_MB``), so repeated calls skip the load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ray import serve

from pipeline.forecasting.predict import Predictions, predict_rows
from pipeline.models.artifacts import ModelArtifact, artifact_bytes, load_artifact
from pipeline.storage import Location
from serve_app.model_cache import ModelCache

DEFAULT_CACHE_BYTES = 1024 * 2**20


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
class ModelServer:
    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._cache = ModelCache(_load_artifact, cache_bytes)

    def predict(
        self, artifact_uri: str, rows: Sequence[Mapping[str, Any]], explain: bool = False
    ) -> Predictions:
        """Raises: InvalidRequest (bad rows)."""
        return predict_rows(self._cache.get(artifact_uri), rows, explain)

    def cache_info(self) -> dict[str, int]:
        """Artifact loads (misses) and reuses (hits) since this replica started; the
        models kept and their bytes."""
        return self._cache.info()


def _load_artifact(artifact_uri: str) -> tuple[ModelArtifact, int]:
    """A model and its size: its directory's bytes on disk (boosters, as text, take
    about as much memory loaded)."""
    location = Location(artifact_uri)
    return load_artifact(location), artifact_bytes(location)
