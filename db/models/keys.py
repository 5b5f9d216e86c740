"""The API keys' table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, UtcDateTime
from domain.clock import utcnow


class ApiKey(Base):
    """An API key: only the SHA-256 of its secret is stored."""

    __tablename__ = "ai_api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(8))
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'member', 'admin')", name="ck_keys_role"),
        Index("ix_keys_tenant", "tenant_id"),
    )
