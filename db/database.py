"""One database: an engine and transactions that turn an unreachable server into a domain error.

The stores (jobs, experiments, registry, retention) each take a ``Database``, so one engine
and one connection pool serve them all. Its errors never show the URL's password.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from db.engine import create_engine, session_factory
from db.migrate import upgrade
from domain.errors import ServiceUnavailable
from domain.redaction import redact, redact_url, secrets_of


class UnusableDatabaseUrl(ValueError):
    """The database URL cannot be parsed; the message shows it without its password."""


class Database:
    def __init__(self, engine: AsyncEngine, secrets: tuple[str, ...] = ()) -> None:
        """``secrets``: what its errors must not show (the URL's password)."""
        self.engine = engine
        self._sessions = session_factory(engine)
        password = engine.url.password
        self._secrets = secrets + ((str(password),) if password else ())

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Raises: UnusableDatabaseUrl: the URL cannot be parsed."""
        try:
            engine = create_engine(url)
        except (ArgumentError, ValueError, TypeError) as exc:
            reason = redact(str(exc), secrets_of(url))
            raise UnusableDatabaseUrl(f"cannot use {redact_url(url)}: {reason}") from None
        return cls(engine, secrets_of(url))

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
            raise self._unavailable(exc) from exc

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent).

        Raises:
            ServiceUnavailable: the database cannot be reached.
        """
        try:
            await upgrade(self.engine)
        except (DBAPIError, OSError) as exc:
            if isinstance(exc, DBAPIError) and not is_unavailable(exc):
                raise
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> ServiceUnavailable:
        return ServiceUnavailable(f"database unavailable: {redact(str(exc), self._secrets)}")

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
