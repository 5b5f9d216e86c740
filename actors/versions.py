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
from datetime import datetime
from typing import Protocol

from domain.versions import first_free_version


class RegisteredVersions(Protocol):
    """Where registered versions are looked up (``db.registry.ModelRegistry``)."""

    async def versions(self, tenant_id: str, model_name: str) -> set[str]: ...


class VersionClaims:
    """The versions running jobs hold, by job."""

    def __init__(self, registry: RegisteredVersions) -> None:
        self._registry = registry
        self._held: dict[str, tuple[str, str, str]] = {}  # job -> (tenant, model, version)
        self._lock = asyncio.Lock()

    async def claim(self, job_id: str, tenant_id: str, model_name: str, now: datetime) -> str:
        """The job's version: the one it holds, or else the first free second from ``now``."""
        async with self._lock:
            if job_id in self._held:
                return self._held[job_id][2]
            # Held versions first: a job that registers and releases its version while the
            # registry is read would otherwise be in neither set.
            taken = {v for t, m, v in self._held.values() if (t, m) == (tenant_id, model_name)}
            taken |= await self._registry.versions(tenant_id, model_name)
            version = first_free_version(now, lambda v: v not in taken)
            self._held[job_id] = (tenant_id, model_name, version)
            return version

    def release(self, job_id: str) -> None:
        """The job ended: its version is registered or was never used."""
        self._held.pop(job_id, None)
