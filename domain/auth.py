"""Who is calling, and what they may do: roles and the tenant rule, as pure functions.

A key belongs to one tenant and has a role: ``viewer`` reads, ``member`` also submits,
cancels and retries, ``admin`` does anything in every tenant. Another tenant's resources
are answered as if they did not exist (404), never 403, so ids do not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import Forbidden


class Role(StrEnum):
    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The caller; ``tenant_id`` is None for an admin of every tenant (or auth off)."""

    tenant_id: str | None
    role: Role
    key_id: str | None = None

    @classmethod
    def unauthenticated_admin(cls) -> Principal:
        """The caller when auth is off (loopback only): an admin of every tenant."""
        return cls(None, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def scope(self) -> str | None:
        """The only tenant this caller sees, or None for every tenant."""
        return None if self.is_admin else self.tenant_id

    def sees(self, tenant_id: str) -> bool:
        """Whether a resource of ``tenant_id`` exists for this caller."""
        return self.is_admin or tenant_id == self.tenant_id

    def tenant_filter(self, requested: str | None) -> str | None:
        """The tenant a list is limited to: the caller's own unless admin.

        Raises:
            Forbidden: a non-admin asked for another tenant.
        """
        if self.is_admin:
            return requested
        if requested is not None and requested != self.tenant_id:
            raise Forbidden(f"this key cannot read tenant {requested!r}")
        return self.tenant_id

    def require_write(self, tenant_id: str | None) -> None:
        """Allow a change to ``tenant_id``'s resources.

        Raises:
            Forbidden: a viewer, or a member of another tenant.
        """
        if self.is_admin:
            return
        if self.role is Role.VIEWER:
            raise Forbidden("a viewer key cannot change anything")
        if tenant_id != self.tenant_id:
            raise Forbidden(f"this key cannot act for tenant {tenant_id!r}")

    def require_admin(self) -> None:
        """Raises: Forbidden: the caller is not an admin."""
        if not self.is_admin:
            raise Forbidden("only an admin key may do this")
