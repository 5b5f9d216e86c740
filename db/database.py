"""One database: an engine and transactions that turn an unreachable server into a domain error.

The stores (jobs, experiments, registry, retention) each take a ``Database``, so one engine
and one connection pool serve them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from db.engine import create_engine, session_factory
from domain.errors import ServiceUnavailable


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(create_engine(url))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, committed on exit.

        Raises:
            ServiceUnavailable: the database cannot be reached (or dropped the connection).
        """
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except (DBAPIError, OSError) as exc:
            if isinstance(exc, DBAPIError) and not is_unavailable(exc):
                raise
            raise ServiceUnavailable(f"database unavailable: {exc}") from exc

    async def close(self) -> None:
        await self.engine.dispose()


#: SQLSTATE classes of a server that is not there for now: connection exceptions (08) and
#: operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 "the database
#: system is starting up" / "shutting down"), which asyncpg raises as plain errors.
UNAVAILABLE_SQLSTATES = ("08", "57P")


def is_unavailable(exc: DBAPIError) -> bool:
    """Whether the error means the server is unreachable, not that the statement failed."""
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    return (
        bool(exc.connection_invalidated)
        or isinstance(exc, OperationalError)
        or sqlstate.startswith(UNAVAILABLE_SQLSTATES)
    )
