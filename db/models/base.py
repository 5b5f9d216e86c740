"""What every table shares: the declarative ``Base`` whose metadata Alembic compares with
the database, UTC-aware datetimes on every backend, auto-incremented ids that SQLite
accepts, and the check constraint that keeps a column to an enum's values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

# SQLite only auto-increments INTEGER PRIMARY KEY columns.
AutoIncrementId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def one_of(column: str, values: Any) -> str:
    """A check constraint's condition: ``column`` holds the value of one of ``values``."""
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


class Base(DeclarativeBase):
    pass
