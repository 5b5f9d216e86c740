"""Feature sets: upload a CSV or Parquet file, list and describe the stored ones."""

from __future__ import annotations

import asyncio
import tempfile
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from domain.errors import InvalidFeatureSet
from domain.names import NAME_PATTERN
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.schemas.feature_sets import FeatureSetPublic, FeatureSetsPublic

router = APIRouter(prefix="/ai/training/feature-sets", tags=["feature sets"])

FeatureSetName = Annotated[str, Path(pattern=NAME_PATTERN)]
ColumnName = Annotated[str, Query(min_length=1, max_length=128)]


@router.put("/{name}", response_model=FeatureSetPublic)
async def put_feature_set(
    name: FeatureSetName,
    request: Request,
    services: ServicesDep,
    timestamp_column: ColumnName,
    target_column: ColumnName,
    principal: PrincipalDep,
    series_column: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    tenant_id: Annotated[
        str | None,
        Query(pattern=NAME_PATTERN, description="Admin only; default: the key's tenant."),
    ] = None,
) -> FeatureSetPublic:
    """Store the request body (CSV or Parquet) as a new version of feature set ``name`` of
    the caller's tenant (an admin may name a tenant, or none for a set every tenant
    shares); it becomes the current version. The body is spooled to disk and imported in
    batches, so its size is bounded by disk, not memory. Bounded too: the body's size and
    the table's once decompressed (413), its columns (422) and the uploads a replica
    imports at once (503 with Retry-After); a refused upload stores nothing."""
    owner = tenant_id if principal.is_admin else principal.tenant_id
    principal.require_write(tenant_id or owner)
    limits = services.uploads.limits
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        limits.check_size(int(declared))
    with services.uploads.slot(), tempfile.TemporaryFile(prefix="upload-") as spooled:
        size = 0
        async for chunk in request.stream():  # the body never sits in memory
            size += len(chunk)
            limits.check_size(size)
            await asyncio.to_thread(spooled.write, chunk)
        if not size:
            raise InvalidFeatureSet("body", "the uploaded file is empty")
        spooled.seek(0)
        schema = await asyncio.to_thread(
            services.features.for_tenant(owner).import_file,
            name,
            spooled,
            timestamp_column=timestamp_column,
            target_column=target_column,
            series_column=series_column,
            limits=limits.for_import(),
        )
    return FeatureSetPublic.model_validate(schema)


@router.get("/{name}/versions", response_model=FeatureSetsPublic)
async def list_feature_set_versions(
    name: FeatureSetName, services: ServicesDep, principal: PrincipalDep
) -> FeatureSetsPublic:
    """Every kept version of a set, oldest first; the last is the current one."""
    features = services.features.for_tenant(principal.tenant_id)
    schemas = await asyncio.to_thread(features.versions, name)
    return FeatureSetsPublic(feature_sets=[FeatureSetPublic.model_validate(s) for s in schemas])


@router.get("", response_model=FeatureSetsPublic)
async def list_feature_sets(services: ServicesDep, principal: PrincipalDep) -> FeatureSetsPublic:
    """The shared feature sets and the caller's tenant's own."""
    schemas = await asyncio.to_thread(services.features.for_tenant(principal.tenant_id).list)
    return FeatureSetsPublic(feature_sets=[FeatureSetPublic.model_validate(s) for s in schemas])


@router.get("/{name}", response_model=FeatureSetPublic)
async def get_feature_set(
    name: FeatureSetName, services: ServicesDep, principal: PrincipalDep
) -> FeatureSetPublic:
    features = services.features.for_tenant(principal.tenant_id)
    return FeatureSetPublic.model_validate(await asyncio.to_thread(features.schema, name))
