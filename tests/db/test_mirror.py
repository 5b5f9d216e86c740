"""The MLflow mirror's ledger on both backends holds the longest keys the names allow."""

from __future__ import annotations

from db.jobs import JobStore
from db.mirror import MirrorLedger
from db.records import MirrorKind, alias_key


async def test_the_longest_alias_key_is_recorded(store: JobStore) -> None:
    """Tenant and model names of 128 characters and an alias of 64 make a key of 322:
    PostgreSQL had refused it, and the mirror retried that alias on every pass."""
    ledger = MirrorLedger(store.database)
    key = alias_key("t" * 128, "m" * 128, "a" * 64)
    assert len(key) == 322
    ref = f"{'t' * 128}:{'m' * 128}:20260101.000000"
    await ledger.record(MirrorKind.ALIAS, key, ref)
    assert await ledger.ref(MirrorKind.ALIAS, key) == ref
