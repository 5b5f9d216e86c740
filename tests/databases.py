"""Fresh, empty databases for tests: a SQLite file or a PostgreSQL database of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from db.database import Database
from db.jobs import JobStore
from db.migrate import upgrade

BACKENDS = ("sqlite", "postgresql")
POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@asynccontextmanager
async def fresh_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """Yield the SQLAlchemy URL of a new empty database; drop it afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'training-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"training_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def migrated_store(backend: str, directory: Path) -> AsyncIterator[JobStore]:
    """A job store on a fresh database with the schema at the newest migration (the other
    stores are built on its ``database``)."""
    async with fresh_database(backend, directory) as url:
        database = Database.from_url(url)
        await upgrade(database.engine)
        try:
            yield JobStore(database)
        finally:
            await database.close()
