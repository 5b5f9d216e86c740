"""Idempotency keys: the claim a job's creation writes, and the lookup of an earlier one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyKey
from db.records import IdempotencyClaim, IdempotencyRecord

#: The service's own keys begin so (a schedule's fire, a policy's retrain); a client's
#: may not, or a request could take a fire's key and the fire then make no job.
SCHEDULE_KEY_PREFIX = "schedule:"
POLICY_KEY_PREFIX = "policy:"
SERVICE_KEY_PREFIXES = (SCHEDULE_KEY_PREFIX, POLICY_KEY_PREFIX)


async def find_claim(
    session: AsyncSession, tenant_id: str, key: str, since: datetime
) -> IdempotencyRecord | None:
    """The job an idempotency key created at or after ``since``, if any."""
    row = await session.get(IdempotencyKey, (tenant_id, key))
    if row is None or row.created_at < since:
        return None
    return IdempotencyRecord(row.key, row.request_hash, row.job_id, row.created_at)


async def add_claim(
    session: AsyncSession, tenant_id: str, claim: IdempotencyClaim, job_id: str, now: datetime
) -> None:
    """Record that ``claim`` created ``job_id``, replacing an expired claim of the same key,
    in ``session``'s transaction (the job's creation)."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == claim.key
        )
    )
    session.add(
        IdempotencyKey(
            tenant_id=tenant_id,
            key=claim.key,
            request_hash=claim.request_hash,
            job_id=job_id,
            created_at=now,
        )
    )
