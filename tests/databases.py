"""Databases for tests: a SQLite file or a PostgreSQL database of its own, empty or at the
newest migration.

A migrated database is a copy of a template migrated once per schema (``CREATE DATABASE
... TEMPLATE`` on PostgreSQL, a file copy on SQLite), not a migration per test. The
template is named after a digest of the migration scripts, so a changed migration gets a
new one and a template is never reused for another schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from db.database import Database
from db.engine import create_engine
from db.jobs import JobStore
from db.migrate import MIGRATIONS, upgrade

BACKENDS = ("sqlite", "postgresql")
POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

SCHEMA_DIGEST = hashlib.sha256(
    b"".join(path.read_bytes() for path in sorted(MIGRATIONS.rglob("*.py")))
).hexdigest()[:12]
TEMPLATE_PREFIX = "training_template_"
TEMPLATE = f"{TEMPLATE_PREFIX}{SCHEMA_DIGEST}"
SQLITE_TEMPLATE = Path(tempfile.gettempdir()) / "training-test-templates" / f"{TEMPLATE}.db"

#: Templates this process has made sure of.
_ready: set[str] = set()
_template_lock = asyncio.Lock()


@asynccontextmanager
async def fresh_database(
    backend: str, directory: Path, *, migrated: bool = False
) -> AsyncIterator[str]:
    """Yield the SQLAlchemy URL of a new database, empty or (``migrated``) at the newest
    migration; drop it afterwards."""
    if backend == "sqlite":
        path = directory / f"training-{uuid.uuid4().hex[:8]}.db"
        if migrated:
            shutil.copyfile(await _sqlite_template(), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"training_test_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{await _postgres_template()}"' if migrated else ""
    await _admin(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _postgres_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def migrated_store(backend: str, directory: Path) -> AsyncIterator[JobStore]:
    """A job store on a new database at the newest migration (the other stores are built
    on its ``database``)."""
    async with fresh_database(backend, directory, migrated=True) as url:
        database = Database.from_url(url)
        try:
            yield JobStore(database)
        finally:
            await database.close()


async def _sqlite_template() -> Path:
    async with _template_lock:
        if SQLITE_TEMPLATE.name not in _ready:
            if not SQLITE_TEMPLATE.exists():
                SQLITE_TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
                building = SQLITE_TEMPLATE.with_suffix(f".{uuid.uuid4().hex[:8]}")
                await _migrate(f"sqlite+aiosqlite:///{building}")
                os.replace(building, SQLITE_TEMPLATE)  # whole, or not there at all
            _ready.add(SQLITE_TEMPLATE.name)
    return SQLITE_TEMPLATE


async def _postgres_template() -> str:
    async with _template_lock:
        if TEMPLATE not in _ready:
            await _build_postgres_template()
            _ready.add(TEMPLATE)
    return TEMPLATE


async def _build_postgres_template() -> None:
    """Make the template if no earlier session did: migrated under a name of its own, then
    renamed, so a half-built template is never copied. Templates of older schemas go."""
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        existing = {
            row["datname"]
            for row in await admin.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{TEMPLATE_PREFIX}%"
            )
        }
        if TEMPLATE not in existing:
            building = f"{TEMPLATE}_{uuid.uuid4().hex[:8]}"
            await admin.execute(f'CREATE DATABASE "{building}"')
            await _migrate(_postgres_url(building))
            try:
                await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{TEMPLATE}"')
            except asyncpg.DuplicateDatabaseError:  # another session made it meanwhile
                await admin.execute(f'DROP DATABASE "{building}"')
        stale = {name for name in existing if len(name) == len(TEMPLATE)} - {TEMPLATE}
        for name in stale:  # in use by a session on an older checkout: left for later
            with contextlib.suppress(asyncpg.ObjectInUseError):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def _postgres_url(name: str) -> str:
    base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"
