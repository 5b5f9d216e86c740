"""API keys: issued once, stored as a SHA-256 of their secret, checked on every request.

A key reads ``trk_<key_id>_<secret>``. The secret is 32 random bytes, so a plain SHA-256
is the right digest (a slow password hash guards guessable secrets, not random ones); the
comparison is constant-time. ``last_used_at`` is refreshed at most once a minute, so
reads do not become writes. An operator may also write a key of their own (the admin key
a cluster starts with, ``ensure``): it must be as long and as random, which
``parse_key`` checks of its form.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from db.database import Database
from db.models import ApiKey
from db.records import IssuedKey, KeyRecord
from domain.auth import Principal, Role
from domain.errors import Conflict, KeyNotFound, Unauthorized

PREFIX = "trk"
LAST_USED_RESOLUTION = timedelta(minutes=1)
KEY_ID = re.compile(r"[A-Za-z0-9-]{1,32}")
#: An operator's secret: at least as long as ``token_hex(16)``, in the URL-safe alphabet.
SECRET = re.compile(r"[A-Za-z0-9_-]{32,256}")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def parse_key(token: str) -> tuple[str, str]:
    """The key id and secret of a key an operator wrote, ``trk_<key id>_<secret>``.

    Raises:
        ValueError: not of that form, or the secret is short or outside the URL-safe
            alphabet. The message never repeats the secret.
    """
    parts = _split(token.strip())
    if parts is None:
        raise ValueError(f"an API key reads {PREFIX}_<key id>_<secret>; this one does not")
    key_id, secret = parts
    if KEY_ID.fullmatch(key_id) is None:
        raise ValueError("an API key's id is 1 to 32 letters, digits or '-'")
    if SECRET.fullmatch(secret) is None:
        raise ValueError(
            f"the secret of API key {key_id} must be 32 to 256 letters, digits, '-' or '_' "
            f"(random: e.g. openssl rand -hex 32); it has {len(secret)} characters"
        )
    return key_id, secret


class ApiKeyStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(
        self,
        tenant_id: str,
        role: Role,
        now: datetime,
        expires_at: datetime | None = None,
        name: str | None = None,
    ) -> IssuedKey:
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        row = _new_row(key_id, secret, tenant_id, role, now, expires_at, name)
        async with self._database.transaction() as session:
            session.add(row)
        return IssuedKey(_record(row), f"{PREFIX}_{key_id}_{secret}")

    async def authenticate(self, token: str, now: datetime) -> Principal:
        """The caller a key stands for.

        Raises:
            Unauthorized: malformed, unknown, wrong, expired or revoked (one message for all,
                so a caller learns nothing about which).
        """
        refused = Unauthorized("invalid or expired API key")
        parts = _split(token)
        if parts is None:
            raise refused
        key_id, secret = parts
        async with self._database.transaction() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
                raise refused
            if not _usable(row, now):
                raise refused
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
                row.last_used_at = now
            return Principal(row.tenant_id, Role(row.role), row.key_id)

    async def ensure(
        self, token: str, tenant_id: str, role: Role, now: datetime, name: str | None = None
    ) -> bool:
        """Make an operator's key valid: store it (hashed) unless its key id exists; returns
        whether it was added. Running it again with the same key changes nothing.

        Raises:
            ValueError: the key is malformed (``parse_key``).
            Conflict: its key id exists with another secret or role, or was revoked or has
                expired (a revoked key is never brought back: write a new one).
        """
        key_id, secret = parse_key(token)
        async with self._database.transaction() as session:
            row = await session.get(ApiKey, key_id)
            if row is None:
                session.add(_new_row(key_id, secret, tenant_id, role, now, name=name))
                return True
            if not hmac.compare_digest(row.secret_hash, _digest(secret)):
                raise Conflict(f"API key {key_id} exists with another secret")
            if row.role != role.value:
                raise Conflict(f"API key {key_id} exists with role {row.role}, not {role.value}")
            if not _usable(row, now):
                raise Conflict(f"API key {key_id} was revoked or has expired: write a new key")
            return False

    async def search(self, tenant_id: str | None = None) -> list[KeyRecord]:
        query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id)
        if tenant_id is not None:
            query = query.where(ApiKey.tenant_id == tenant_id)
        async with self._database.transaction() as session:
            return [_record(r) for r in (await session.scalars(query)).all()]

    async def revoke(self, key_id: str, now: datetime) -> None:
        """Raises: KeyNotFound."""
        statement = (
            update(ApiKey)
            .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        async with self._database.transaction() as session:
            result = await session.execute(statement)
            if not getattr(result, "rowcount", 0) and await session.get(ApiKey, key_id) is None:
                raise KeyNotFound(key_id)


def _new_row(
    key_id: str,
    secret: str,
    tenant_id: str,
    role: Role,
    now: datetime,
    expires_at: datetime | None = None,
    name: str | None = None,
) -> ApiKey:
    """A key's row: its secret kept only as a digest."""
    return ApiKey(
        key_id=key_id,
        tenant_id=tenant_id,
        role=role.value,
        secret_hash=_digest(secret),
        name=name,
        created_at=now,
        expires_at=expires_at,
    )


def _usable(row: ApiKey, now: datetime) -> bool:
    """Neither revoked nor expired at ``now``."""
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(
        key_id=row.key_id,
        tenant_id=row.tenant_id,
        role=Role(row.role),
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
