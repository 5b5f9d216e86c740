"""API keys on both backends: hashed at rest, and refused when forged, expired or revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.jobs import JobStore
from db.keys import ApiKeyStore
from db.models import ApiKey
from domain.auth import Role
from domain.errors import KeyNotFound, Unauthorized

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def keys(store: JobStore) -> ApiKeyStore:
    return ApiKeyStore(store.database)


async def test_a_key_authenticates_as_its_tenant_and_role(
    store: JobStore, keys: ApiKeyStore
) -> None:
    issued = await keys.create("tenant-a", Role.VIEWER, NOW, name="dashboards")
    principal = await keys.authenticate(issued.token, NOW)
    assert (principal.tenant_id, principal.role) == ("tenant-a", Role.VIEWER)
    async with store.database.transaction() as session:
        stored = (await session.scalars(select(ApiKey))).one()
    secret = issued.token.rsplit("_", 1)[1]
    assert secret not in stored.secret_hash
    assert issued.token not in repr(await keys.search())
    [listed] = await keys.search("tenant-a")
    assert listed.last_used_at == NOW


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "trk_0000000000000000_" + t.rsplit("_", 1)[1],
        lambda t: t.replace("trk_", "xyz_", 1),
        lambda t: "",
        lambda t: "trk__",
        lambda t: "' OR 1=1 --",
    ],
)
async def test_forged_keys_are_refused(keys: ApiKeyStore, forge: object) -> None:
    issued = await keys.create("tenant-a", Role.ADMIN, NOW)
    with pytest.raises(Unauthorized, match="invalid or expired API key"):
        await keys.authenticate(forge(issued.token), NOW)  # type: ignore[operator]


async def test_expired_and_revoked_keys_are_refused(keys: ApiKeyStore) -> None:
    expiring = await keys.create("tenant-a", Role.MEMBER, NOW, expires_at=NOW + timedelta(days=1))
    assert (await keys.authenticate(expiring.token, NOW)).tenant_id == "tenant-a"
    with pytest.raises(Unauthorized):
        await keys.authenticate(expiring.token, NOW + timedelta(days=1))
    revoked = await keys.create("tenant-a", Role.MEMBER, NOW)
    await keys.revoke(revoked.record.key_id, NOW)
    with pytest.raises(Unauthorized):
        await keys.authenticate(revoked.token, NOW)
    with pytest.raises(KeyNotFound):
        await keys.revoke("no-such-key", NOW)
