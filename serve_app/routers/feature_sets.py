"""Feature sets: upload a CSV or Parquet file, list and describe the stored ones."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from domain.errors import InvalidFeatureSet
from pipeline.config import NAME_PATTERN
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
    series_column: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> FeatureSetPublic:
    """Store the request body (CSV or Parquet) as feature set ``name``, replacing it if present."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > services.max_upload_bytes:
            raise InvalidFeatureSet(
                "body", f"the file exceeds {services.max_upload_bytes // 2**20} MiB"
            )
    schema = await asyncio.to_thread(
        services.features.put_bytes,
        name,
        bytes(body),
        timestamp_column=timestamp_column,
        target_column=target_column,
        series_column=series_column,
    )
    return FeatureSetPublic.model_validate(schema)


@router.get("", response_model=FeatureSetsPublic)
async def list_feature_sets(services: ServicesDep) -> FeatureSetsPublic:
    schemas = await asyncio.to_thread(services.features.list)
    return FeatureSetsPublic(feature_sets=[FeatureSetPublic.model_validate(s) for s in schemas])


@router.get("/{name}", response_model=FeatureSetPublic)
async def get_feature_set(name: FeatureSetName, services: ServicesDep) -> FeatureSetPublic:
    return FeatureSetPublic.model_validate(await asyncio.to_thread(services.features.schema, name))
