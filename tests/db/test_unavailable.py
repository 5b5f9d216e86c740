"""Which database errors mean "the server is not there for now" (503, writes retried)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError

from db.database import is_unavailable


def wrapped(error: Exception) -> DBAPIError:
    """The error as SQLAlchemy's asyncpg dialect hands it over when a connect fails."""
    adapted = AsyncAdapt_asyncpg_dbapi.Error(str(error), error)  # type: ignore[no-untyped-call]
    return DBAPIError("connect", None, adapted)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection does not exist"),
    ],
)
def test_a_server_starting_or_stopping_is_unavailable(error: Exception) -> None:
    assert is_unavailable(wrapped(error))


def test_a_failing_statement_is_not() -> None:
    error = asyncpg.exceptions.UndefinedTableError('relation "x" does not exist')
    assert not is_unavailable(wrapped(error))
