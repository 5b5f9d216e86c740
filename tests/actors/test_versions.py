"""Model versions handed to register stages, against the real registry on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors.versions import VersionClaims
from db.jobs import JobStore
from db.registry import ModelRegistry
from domain.events import JobEvent
from tests.databases import BACKENDS, migrated_store
from tests.db.factories import new_job, new_model

NOW = datetime(2026, 11, 27, 11, 58, 10, 215136, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    async with migrated_store(request.param, tmp_path) as store:
        yield store


async def test_jobs_registering_the_same_model_in_one_second_get_different_versions(
    store: JobStore,
) -> None:
    claims = VersionClaims(ModelRegistry(store.database))
    versions = await asyncio.gather(
        *(claims.claim(f"job-{n}", "tenant-a", "load_forecast", NOW) for n in range(4))
    )
    assert versions == ["20261127.115810", "20261127.115811", "20261127.115812", "20261127.115813"]
    other_model = await claims.claim("job-9", "tenant-a", "other_model", NOW)
    other_tenant = await claims.claim("job-8", "tenant-b", "load_forecast", NOW)
    assert other_model == other_tenant == "20261127.115810"


async def test_a_retried_stage_gets_its_job_s_version_again(store: JobStore) -> None:
    claims = VersionClaims(ModelRegistry(store.database))
    first = await claims.claim("job-1", "tenant-a", "load_forecast", NOW)
    later = NOW.replace(minute=59)
    assert await claims.claim("job-1", "tenant-a", "load_forecast", later) == first


async def test_registered_versions_are_skipped_and_released_ones_reused(
    store: JobStore,
) -> None:
    job = await store.create_job(new_job())
    await store.transition(job.job_id, JobEvent.START)
    await store.transition(job.job_id, JobEvent.COMPLETE, model=new_model("20261127.115810"))
    claims = VersionClaims(ModelRegistry(store.database))
    assert await claims.claim("job-1", "tenant-a", "load_forecast", NOW) == "20261127.115811"

    claims.release("job-1")  # ended without registering
    assert await claims.claim("job-2", "tenant-a", "load_forecast", NOW) == "20261127.115811"
