"""Feature sets: upload a CSV or Parquet file, append rows to one, label its anomaly
windows, list and describe them."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, Annotated, Literal

import pandas as pd
from fastapi import APIRouter, BackgroundTasks, Path, Query, Request

from domain.auth import Principal
from domain.errors import InvalidFeatureSet
from domain.names import NAME_PATTERN
from pipeline.store.feature_store import FeatureStore
from pipeline.store.windows import LabelledWindow
from serve_app.auth import PrincipalDep
from serve_app.dependencies import Services, ServicesDep
from serve_app.schemas.feature_sets import (
    FeatureSetPublic,
    FeatureSetsPublic,
    LabelledWindowPublic,
    LabelledWindows,
)

router = APIRouter(prefix="/ai/training/feature-sets", tags=["feature sets"])

FeatureSetName = Annotated[str, Path(pattern=NAME_PATTERN)]
ColumnName = Annotated[str, Query(min_length=1, max_length=128)]
TenantParam = Annotated[
    str | None,
    Query(pattern=NAME_PATTERN, description="Admin only; default: the key's tenant."),
]
ReadTenantParam = Annotated[
    str | None,
    Query(
        pattern=NAME_PATTERN,
        description="Another tenant's sets (admin only); default: the key's tenant's.",
    ),
]
logger = logging.getLogger(__name__)


@router.put("/{name}", response_model=FeatureSetPublic)
async def put_feature_set(
    name: FeatureSetName,
    request: Request,
    services: ServicesDep,
    timestamp_column: ColumnName,
    target_column: ColumnName,
    principal: PrincipalDep,
    series_column: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    tenant_id: TenantParam = None,
) -> FeatureSetPublic:
    """Store the request body (CSV or Parquet) as a new version of feature set ``name`` of
    the caller's tenant (an admin may name a tenant, or none for a set every tenant
    shares); it becomes the current version. The body is spooled to disk and imported in
    batches, so its size is bounded by disk, not memory. Bounded too: the body's size and
    the table's once decompressed (413), its columns (422) and the uploads a replica
    imports at once (503 with Retry-After); a refused upload stores nothing."""
    owner = _owner(principal, tenant_id)
    limits = services.uploads.limits
    async with _spooled(request, services) as body:
        schema = await asyncio.to_thread(
            services.features.for_tenant(owner).import_file,
            name,
            body,
            timestamp_column=timestamp_column,
            target_column=target_column,
            series_column=series_column,
            limits=limits.for_import(),
        )
    return FeatureSetPublic.model_validate(schema)


@router.post("/{name}/rows", response_model=FeatureSetPublic, status_code=201)
async def append_rows(
    name: FeatureSetName,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    background: BackgroundTasks,
    on_conflict: Annotated[
        Literal["refuse", "replace"],
        Query(description="Rows the set has already: refused (422), or replacing them."),
    ] = "refuse",
    tenant_id: TenantParam = None,
) -> FeatureSetPublic:
    """Append the request body's rows (CSV or Parquet, the set's columns) to feature set
    ``name`` as a new version, now the current one, that shares the previous version's
    files: its cost grows with the rows appended, not with the set. Rows whose (series,
    timestamp) the set has are refused with a 422 naming the first, unless
    ``on_conflict=replace`` (corrections: the version counts the rows it replaced).
    Columns missing, not the set's or of other types are 422, one entry per column; the
    limits of an upload hold (413, 503); a refused append stores nothing. Afterwards, not
    holding up the answer, the set's parts are compacted if the append made them uneven
    (``pipeline.store.compaction``)."""
    features = services.features.for_tenant(_owner(principal, tenant_id))
    async with _spooled(request, services) as body:
        schema = await asyncio.to_thread(
            features.append,
            name,
            body,
            on_conflict=on_conflict,
            limits=services.uploads.limits.for_import(),
        )
    background.add_task(_compact, features, name)
    return FeatureSetPublic.model_validate(schema)


@router.put("/{name}/anomaly-windows", response_model=LabelledWindows)
async def put_anomaly_windows(
    name: FeatureSetName,
    body: LabelledWindows,
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: TenantParam = None,
) -> LabelledWindows:
    """Replace the set's labelled anomaly windows (its incidents, as time ranges). An
    anomaly job on a set without an ``is_anomaly`` column is scored against them: event-
    and point-wise precision, recall and F1, NAB's score and false alarms a week. A window
    ending before it starts or naming an unknown series is 422 and stores nothing."""
    features = services.features.for_tenant(_owner(principal, tenant_id))
    windows = [
        LabelledWindow(pd.Timestamp(w.start), pd.Timestamp(w.end), w.series) for w in body.windows
    ]
    stored = await asyncio.to_thread(features.put_windows, name, windows)
    return _windows_public(stored)


@router.get("/{name}/anomaly-windows", response_model=LabelledWindows)
async def get_anomaly_windows(
    name: FeatureSetName,
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: ReadTenantParam = None,
) -> LabelledWindows:
    """The set's labelled anomaly windows, in order of start."""
    features = services.features.for_tenant(_reader(principal, tenant_id))
    return _windows_public(await asyncio.to_thread(features.windows, name))


def _windows_public(windows: list[LabelledWindow]) -> LabelledWindows:
    return LabelledWindows(
        windows=[
            LabelledWindowPublic(
                start=w.start.to_pydatetime(), end=w.end.to_pydatetime(), series=w.series
            )
            for w in windows
        ]
    )


def _reader(principal: Principal, tenant_id: str | None) -> str | None:
    """Whose sets a read sees (beside the shared ones): the key's tenant's, or the one an
    admin names.

    Raises:
        Forbidden: a key that is not an admin's named another tenant.
    """
    return principal.tenant_id if tenant_id is None else principal.tenant_filter(tenant_id)


def _owner(principal: Principal, tenant_id: str | None) -> str | None:
    """Whose sets a write goes to: the key's tenant's, or the one an admin names (None:
    the shared sets).

    Raises:
        Forbidden: the key may not write there.
    """
    owner = tenant_id if principal.is_admin else principal.tenant_id
    principal.require_write(tenant_id or owner)
    return owner


@asynccontextmanager
async def _spooled(request: Request, services: Services) -> AsyncIterator[IO[bytes]]:
    """The request body spooled to a temporary file, holding one of the replica's upload
    slots; never in memory.

    Raises:
        TooLarge: the body is over the upload limit. InvalidFeatureSet: it is empty.
        UploadBusy: every upload slot is taken.
    """
    limits = services.uploads.limits
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        limits.check_size(int(declared))
    with services.uploads.slot(), tempfile.TemporaryFile(prefix="upload-") as spooled:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            limits.check_size(size)
            await asyncio.to_thread(spooled.write, chunk)
        if not size:
            raise InvalidFeatureSet("body", "the uploaded file is empty")
        spooled.seek(0)
        yield spooled


def _compact(features: FeatureStore, name: str) -> None:
    """Compact a set after an append; a failure leaves it as it was (the next append's
    compaction catches up), so it is logged, not raised."""
    try:
        features.compact(name)
    except Exception:
        logger.exception("compacting feature set %r after an append failed", name)


@router.get("/{name}/versions", response_model=FeatureSetsPublic)
async def list_feature_set_versions(
    name: FeatureSetName,
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: ReadTenantParam = None,
) -> FeatureSetsPublic:
    """Every kept version of a set, oldest first; the last is the current one."""
    features = services.features.for_tenant(_reader(principal, tenant_id))
    schemas = await asyncio.to_thread(features.versions, name)
    return FeatureSetsPublic(feature_sets=[FeatureSetPublic.model_validate(s) for s in schemas])


@router.get("", response_model=FeatureSetsPublic)
async def list_feature_sets(
    services: ServicesDep, principal: PrincipalDep, tenant_id: ReadTenantParam = None
) -> FeatureSetsPublic:
    """The shared feature sets and the caller's tenant's own (or, for an admin, the named
    tenant's)."""
    features = services.features.for_tenant(_reader(principal, tenant_id))
    schemas = await asyncio.to_thread(features.list)
    return FeatureSetsPublic(feature_sets=[FeatureSetPublic.model_validate(s) for s in schemas])


@router.get("/{name}", response_model=FeatureSetPublic)
async def get_feature_set(
    name: FeatureSetName,
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: ReadTenantParam = None,
) -> FeatureSetPublic:
    features = services.features.for_tenant(_reader(principal, tenant_id))
    return FeatureSetPublic.model_validate(await asyncio.to_thread(features.schema, name))
