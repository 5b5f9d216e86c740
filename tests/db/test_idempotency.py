"""Idempotency keys on every backend: a job's creation claims its key, and the lookup finds
the claim while it is fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.jobs import JobStore
from db.records import IdempotencyClaim
from domain.clock import utcnow
from tests.db.factories import new_job

EVER = datetime(2000, 1, 1, tzinfo=UTC)


async def test_a_claim_is_found_while_fresh(store: JobStore) -> None:
    before = utcnow() - timedelta(hours=1)
    draft = new_job()
    await store.create_job(draft, idempotency=IdempotencyClaim("key-1", "hash-1"))
    found = await store.find_idempotent(draft.tenant_id, "key-1", before)
    assert found is not None
    assert (found.key, found.request_hash, found.job_id) == ("key-1", "hash-1", draft.job_id)
    later = found.created_at + timedelta(seconds=1)
    assert await store.find_idempotent(draft.tenant_id, "key-1", later) is None
    assert await store.find_idempotent("tenant-b", "key-1", before) is None
    assert await store.find_idempotent(draft.tenant_id, "key-2", before) is None


async def test_a_new_job_takes_over_a_key(store: JobStore) -> None:
    """The orchestrator decides a key has expired; the store then replaces its claim."""
    first, second = new_job(), new_job()
    await store.create_job(first, idempotency=IdempotencyClaim("key-1", "hash-1"))
    await store.create_job(second, idempotency=IdempotencyClaim("key-1", "hash-2"))
    found = await store.find_idempotent(second.tenant_id, "key-1", EVER)
    assert found is not None
    assert (found.request_hash, found.job_id) == ("hash-2", second.job_id)
