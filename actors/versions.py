"""Model versions handed to register stages, so that no two jobs ever get the same one.

A version is the second a model was registered (``20261127.115810``). Jobs training the
same model can reach their register stage in the same second on different nodes, and an
object store cannot create a directory exclusively, so the stages ask the orchestrator:
it hands out the first second from the stage's clock that no registered model and no
running job holds. A job keeps its version until it ends, so a register stage retried
after its node died writes to the same version again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from db.store import TrainingStore
from domain.errors import ModelNotFound
from pipeline.artifacts import VERSION_FORMAT


class VersionClaims:
    """The versions running jobs hold, by job."""

    def __init__(self, store: TrainingStore) -> None:
        self._store = store
        self._held: dict[str, tuple[str, str, str]] = {}  # job -> (tenant, model, version)
        self._lock = asyncio.Lock()

    async def claim(self, job_id: str, tenant_id: str, model_name: str, now: datetime) -> str:
        """The job's version: the one it holds, or else the first free second from ``now``."""
        async with self._lock:
            if job_id in self._held:
                return self._held[job_id][2]
            held = set(self._held.values())
            moment = now.replace(microsecond=0)
            while True:
                version = moment.strftime(VERSION_FORMAT)
                key = (tenant_id, model_name, version)
                if key not in held and not await self._registered(*key):
                    self._held[job_id] = key
                    return version
                moment += timedelta(seconds=1)

    def release(self, job_id: str) -> None:
        """The job ended: its version is registered or was never used."""
        self._held.pop(job_id, None)

    async def _registered(self, tenant_id: str, model_name: str, version: str) -> bool:
        try:
            await self._store.get_model(f"{tenant_id}:{model_name}:{version}")
        except ModelNotFound:
            return False
        return True
