"""The prediction deployment: loads registered models and keeps the recent ones in memory.

A separate Ray Serve deployment from the API ingress, so it can scale on its own. Loaded
artifacts are kept in an LRU cache keyed by artifact location (artifacts are immutable:
a version is never rewritten), so repeated calls skip the load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ray import serve

from pipeline.artifacts import ModelArtifact, load_artifact
from pipeline.predict import Prediction, predict_rows
from pipeline.storage import Location

DEFAULT_CACHE_SIZE = 16


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
class ModelServer:
    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._load = lru_cache(maxsize=cache_size)(_load_artifact)

    def predict(
        self, artifact_uri: str, rows: Sequence[Mapping[str, Any]], explain: bool = False
    ) -> list[Prediction]:
        """Raises: InvalidRequest (bad rows)."""
        return predict_rows(self._load(artifact_uri), rows, explain)

    def cache_info(self) -> dict[str, int]:
        """Artifact loads (misses) and reuses (hits) since this replica started."""
        info = self._load.cache_info()
        return {"hits": info.hits, "misses": info.misses, "size": info.currsize}


def _load_artifact(artifact_uri: str) -> ModelArtifact:
    return load_artifact(Location(artifact_uri))
