"""API keys on both backends: hashed at rest, and refused when forged, expired or revoked;
an operator's own admin key ensured once, and refused when malformed or clashing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.jobs import JobStore
from db.keys import ApiKeyStore, parse_key
from db.models import ApiKey
from domain.auth import Role
from domain.errors import Conflict, KeyNotFound, Unauthorized

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
    _, secret = parse_key(issued.token)  # the secret may hold "_" itself
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


#: An operator's key, as the cluster config's instructions make one.
OPERATOR_KEY = "trk_ops-admin_" + "0123456789abcdef" * 4


async def test_an_operators_key_is_ensured_once_hashed_and_authenticates_as_admin(
    store: JobStore, keys: ApiKeyStore
) -> None:
    assert await keys.ensure(OPERATOR_KEY, "default", Role.ADMIN, NOW, name="bootstrap")
    later = NOW + timedelta(days=3)
    assert not await keys.ensure(OPERATOR_KEY, "default", Role.ADMIN, later, name="bootstrap")
    assert not await keys.ensure(f"{OPERATOR_KEY}\n", "default", Role.ADMIN, later)
    [record] = await keys.search()
    assert (record.key_id, record.role, record.created_at) == ("ops-admin", Role.ADMIN, NOW)
    async with store.database.transaction() as session:
        stored = (await session.scalars(select(ApiKey))).one()
    assert OPERATOR_KEY.rsplit("_", 1)[1] not in stored.secret_hash
    principal = await keys.authenticate(OPERATOR_KEY, later)
    assert (principal.role, principal.key_id, principal.scope) == (Role.ADMIN, "ops-admin", None)


async def test_an_operators_key_that_clashes_or_was_revoked_is_refused(
    keys: ApiKeyStore,
) -> None:
    await keys.ensure(OPERATOR_KEY, "default", Role.ADMIN, NOW)
    other_secret = OPERATOR_KEY[:-1] + "0"
    with pytest.raises(Conflict, match="ops-admin exists with another secret") as raised:
        await keys.ensure(other_secret, "default", Role.ADMIN, NOW)
    assert "0123456789abcdef" not in str(raised.value)
    with pytest.raises(Conflict, match="with role admin, not member"):
        await keys.ensure(OPERATOR_KEY, "default", Role.MEMBER, NOW)
    await keys.revoke("ops-admin", NOW)
    with pytest.raises(Conflict, match="was revoked"):
        await keys.ensure(OPERATOR_KEY, "default", Role.ADMIN, NOW)
    with pytest.raises(Unauthorized):
        await keys.authenticate(OPERATOR_KEY, NOW)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "reads trk_<key id>_<secret>"),
        ("0123456789abcdef" * 4, "reads trk_<key id>_<secret>"),
        ("trk__" + "a" * 40, "reads trk_<key id>_<secret>"),
        ("trk_admin", "reads trk_<key id>_<secret>"),
        ("trk_adm!n_" + "a" * 40, "id is 1 to 32 letters"),
        ("trk_admin_" + "a" * 31, "must be 32 to 256 .* it has 31 characters"),
        ("trk_admin_" + "a" * 39 + " ", None),
        ("trk_admin_" + "a" * 20 + " " + "a" * 20, "must be 32 to 256"),
        ("trk_admin_" + "é" * 40, "must be 32 to 256"),
    ],
)
def test_an_operators_key_must_be_well_formed(token: str, message: str | None) -> None:
    if message is None:
        assert parse_key(token) == ("admin", "a" * 39)
        return
    with pytest.raises(ValueError, match=message) as raised:
        parse_key(token)
    assert "a" * 20 not in str(raised.value)
