"""Feature sets: upload a CSV or Parquet file, list and describe the stored ones."""

from __future__ import annotations

import asyncio
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
    """Store the request body (CSV or Parquet) as feature set ``name`` of the caller's tenant
    (an admin may name a tenant, or none for a set every tenant shares), replacing it."""
    owner = tenant_id if principal.is_admin else principal.tenant_id
    principal.require_write(tenant_id or owner)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > services.max_upload_bytes:
            raise InvalidFeatureSet(
                "body", f"the file exceeds {services.max_upload_bytes // 2**20} MiB"
            )
    schema = await asyncio.to_thread(
        services.features.for_tenant(owner).put_bytes,
        name,
        bytes(body),
        timestamp_column=timestamp_column,
        target_column=target_column,
        series_column=series_column,
    )
    return FeatureSetPublic.model_validate(schema)


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
