"""Admission control: per-tenant limits on running and queued jobs, and why a job waits.

Pure: the orchestrator tells it the counts (and what the CPUs say, ``actors.dispatch``);
it answers yes, no (429) or the reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import TooManyRequests

#: Retry-After for a full queue when no better estimate exists.
RETRY_AFTER_SECONDS = 30


class TenantLimits(BaseModel):
    """None means unlimited; ``max_running: 0`` pauses a tenant (its jobs queue, none start)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_running: int | None = Field(None, ge=0)
    max_queued: int | None = Field(None, ge=0)


class Admission:
    def __init__(self, defaults: TenantLimits, overrides: Mapping[str, TenantLimits]) -> None:
        self._defaults = defaults
        self._overrides = dict(overrides)

    def limits(self, tenant_id: str) -> TenantLimits:
        """The tenant's override, field by field, over the defaults."""
        override = self._overrides.get(tenant_id)
        if override is None:
            return self._defaults
        given = override.model_dump(exclude_unset=True)
        return self._defaults.model_copy(update=given)

    def admit(self, tenant_id: str, queued: int, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        """Raises: TooManyRequests: the tenant already has its limit of queued jobs."""
        limit = self.limits(tenant_id).max_queued
        if limit is not None and queued >= limit:
            raise TooManyRequests(
                f"tenant {tenant_id!r} has {queued} queued jobs, its limit; retry once some "
                "have started",
                retry_after,
            )

    def may_start(self, tenant_id: str, running: int) -> bool:
        limit = self.limits(tenant_id).max_running
        return limit is None or running < limit

    def waiting_reason(
        self,
        tenant_id: str,
        running: int,
        ahead: int,
        higher: int,
        resources: str | None,
        others_ahead: bool = False,
    ) -> str:
        """Why a queued job has not started, most binding reason first; ``resources`` is
        why the CPUs keep it waiting, if they do; ``others_ahead``: other tenants' jobs,
        not counted in ``ahead``, start first."""
        if not self.may_start(tenant_id, running):
            limit = self.limits(tenant_id).max_running
            if limit == 0:
                return "tenant paused by an operator (max_running 0)"
            return f"tenant limit of {limit} running jobs reached"
        if higher:
            return f"{higher} higher-priority job{'s' if higher > 1 else ''} ahead"
        if resources is not None:
            return resources
        if ahead:
            return f"{ahead} job{'s' if ahead > 1 else ''} ahead"
        if others_ahead:
            return "other tenants' jobs ahead"
        return "starting"
