"""A migrated, empty store on each backend (SQLite and the real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.jobs import JobStore
from tests.databases import BACKENDS, migrated_store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store(request.param, tmp_path) as store:
        yield store
