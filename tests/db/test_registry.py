"""The model registry on both backends: lists and aliases (promotions: test_promotions)."""

from __future__ import annotations

import pytest

from db.jobs import JobStore
from db.records import ModelFilters, NewModel
from db.registry import ModelRegistry
from domain.errors import AliasNotFound, ModelNotFound
from domain.events import JobEvent
from domain.jobs import ModelType
from tests.db.factories import new_job, new_model


async def register(store: JobStore, model: NewModel) -> str:
    job = await store.create_job(new_job(tenant_id=model.tenant_id, model_name=model.model_name))
    await store.transition(job.job_id, JobEvent.START)
    await store.transition(job.job_id, JobEvent.COMPLETE, model=model)
    return job.job_id


@pytest.fixture
def registry(store: JobStore) -> ModelRegistry:
    return ModelRegistry(store.database)


async def test_search_filters_and_paginates(store: JobStore, registry: ModelRegistry) -> None:
    for version in ("20260101.000001", "20260101.000002", "20260101.000003"):
        await register(store, new_model(version))
    await register(store, new_model("20260101.000004", tenant_id="tenant-b"))
    page = await registry.search(ModelFilters(tenant_id="tenant-a"), 1, 2)
    assert page.total == 3
    assert [m.version for m in page.items] == ["20260101.000003", "20260101.000002"]
    other = await registry.search(ModelFilters(tenant_id="tenant-b"), 1, 10)
    assert [m.tenant_id for m in other.items] == ["tenant-b"]


async def test_aliases_point_move_resolve_and_delete(
    store: JobStore, registry: ModelRegistry
) -> None:
    first, second = new_model("20260101.000001"), new_model("20260101.000002")
    await register(store, first)
    await register(store, second)
    model = await registry.set_alias("tenant-a", "load_forecast", "staging", first.version)
    assert model.model_id == first.model_id
    assert model.aliases == ("staging",)
    await registry.set_alias("tenant-a", "load_forecast", "staging", second.version)
    resolved = await registry.resolve("tenant-a", "load_forecast", "staging")
    assert resolved.model_id == second.model_id
    assert (await registry.get(first.model_id)).aliases == ()
    await registry.delete_alias("tenant-a", "load_forecast", "staging")
    with pytest.raises(AliasNotFound):
        await registry.resolve("tenant-a", "load_forecast", "staging")
    with pytest.raises(AliasNotFound):
        await registry.delete_alias("tenant-a", "load_forecast", "staging")
    with pytest.raises(ModelNotFound):
        await registry.set_alias("tenant-a", "load_forecast", "staging", "19990101.000000")


async def test_a_names_types_are_its_versions_and_its_jobs_queued_or_running(
    store: JobStore, registry: ModelRegistry
) -> None:
    assert await registry.model_types("tenant-a", "load_forecast") == set()
    await register(store, new_model("20260101.000001"))
    anomaly = new_job(
        tenant_id="tenant-a", model_name="load_forecast", model_type=ModelType.ANOMALY
    )
    queued = await store.create_job(anomaly)
    both = {ModelType.FORECAST, ModelType.ANOMALY}
    assert await registry.model_types("tenant-a", "load_forecast") == both
    await store.transition(queued.job_id, JobEvent.START)
    assert await registry.model_types("tenant-a", "load_forecast") == both
    await store.transition(queued.job_id, JobEvent.FAIL)
    assert await registry.model_types("tenant-a", "load_forecast") == {ModelType.FORECAST}
    assert await registry.model_types("tenant-b", "load_forecast") == set()
