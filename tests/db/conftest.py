"""A migrated, empty store on each backend (SQLite and the real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.migrate import upgrade
from db.store import SqlAlchemyStore
from tests.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlAlchemyStore]:
    async with fresh_database(request.param, tmp_path) as url:
        store = SqlAlchemyStore.from_url(url)
        await upgrade(store.engine)
        yield store
        await store.close()
