"""Detections: score a window of a feature set with an anomaly model (by version or by
alias), list them, follow one, read its rows (a page as JSON, or all of them as CSV with
``Accept: text/csv``) and its events."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from db.records import ForecastFilters, ForecastRecord, ModelRecord, NewForecast
from domain.auth import Principal
from domain.errors import Conflict
from domain.forecasts import ForecastKind, ForecastStatus
from pipeline.forecast_files import forecast_csv, forecast_page
from pipeline.forecasting.detection import events_location
from pipeline.storage import Location
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import IdFilter, NameFilter, ResourceId, SeriesFilter
from serve_app.responses import CSV_RESPONSE, csv_download, wants_csv
from serve_app.routers.models import Alias, ModelName, Tenant, resolved, visible_model
from serve_app.schemas.detections import (
    DetectionCreate,
    DetectionPagePublic,
    DetectionPublic,
    DetectionRowPublic,
    DetectionsPublic,
    EventsPublic,
)
from serve_app.schemas.models import AnomalyEventPublic

router = APIRouter(prefix="/ai/models", tags=["detections"])

Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=1000)]


@router.post(
    "/{model_id}/detections", status_code=status.HTTP_201_CREATED, response_model=DetectionPublic
)
async def start_detection(
    model_id: ResourceId, body: DetectionCreate, services: ServicesDep, principal: PrincipalDep
) -> DetectionPublic:
    """Score a window of a feature set with an anomaly model in the background; follow it
    at ``GET /ai/models/detections/{detection_id}``."""
    model = await visible_model(model_id, services, principal)
    return await _start(model, body, services, principal)


@router.post(
    "/{tenant_id}/{model_name}@{alias}/detections",
    status_code=status.HTTP_201_CREATED,
    response_model=DetectionPublic,
)
async def start_detection_alias(
    tenant_id: Tenant,
    model_name: ModelName,
    alias: Alias,
    body: DetectionCreate,
    services: ServicesDep,
    principal: PrincipalDep,
) -> DetectionPublic:
    """A detection with the version an alias points at (resolved now)."""
    model = await resolved(tenant_id, model_name, alias, services, principal)
    return await _start(model, body, services, principal)


@router.get("/detections", response_model=DetectionsPublic)
async def list_detections(
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: NameFilter = None,
    model_id: IdFilter = None,
    status: ForecastStatus | None = None,
    page: Page = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DetectionsPublic:
    """Detections, newest first (a tenant's key sees its own)."""
    filters = ForecastFilters(
        principal.tenant_filter(tenant_id), model_id, status, ForecastKind.DETECTION
    )
    return DetectionsPublic.of(await services.forecasts.search(filters, page, page_size))


@router.get(
    "/detections/{detection_id}", response_model=DetectionPagePublic, responses=CSV_RESPONSE
)
async def get_detection(
    detection_id: ResourceId,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    page: Page = 1,
    page_size: PageSize = 100,
    series: SeriesFilter = None,
) -> DetectionPagePublic | Response:
    """Its status and progress, and a page of its rows (or of one ``series``' rows) by
    series then time; with ``Accept: text/csv``, every row (of the ``series``) as CSV
    (400 until it has completed)."""
    detection = await _detection(detection_id, services, principal)
    if wants_csv(request):
        rows = _completed(detection)
        return csv_download(forecast_csv(rows, series=series), f"detection-{detection_id}.csv")
    found, total = await _page(detection, False, page, page_size, series)
    return DetectionPagePublic(
        detection=DetectionPublic.model_validate(detection),
        rows=[DetectionRowPublic.model_validate(row) for row in found],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get("/detections/{detection_id}/events", response_model=EventsPublic)
async def get_detection_events(
    detection_id: ResourceId,
    services: ServicesDep,
    principal: PrincipalDep,
    page: Page = 1,
    page_size: PageSize = 100,
    series: SeriesFilter = None,
) -> EventsPublic:
    """A page of its events (or of one ``series``' events), by start (none until it has
    completed)."""
    detection = await _detection(detection_id, services, principal)
    found, total = await _page(detection, True, page, page_size, series)
    return EventsPublic(
        detection=DetectionPublic.model_validate(detection),
        events=[AnomalyEventPublic.model_validate(row) for row in found],
        total=total,
        page=page,
        page_size=page_size,
    )


async def _start(
    model: ModelRecord, body: DetectionCreate, services: ServicesDep, principal: Principal
) -> DetectionPublic:
    principal.require_write(model.tenant_id)
    detection = NewForecast(
        tenant_id=model.tenant_id,
        model_id=model.model_id,
        feature_set=body.feature_set or model.feature_set,
        horizon=1,  # the model's own, set when the request is checked
        series=tuple(body.series) if body.series is not None else None,
        kind=ForecastKind.DETECTION,
        window_start=body.start,
        window_end=body.end,
    )
    return DetectionPublic.model_validate(await services.orchestrator.start_forecast(detection))


async def _detection(
    detection_id: str, services: ServicesDep, principal: Principal
) -> ForecastRecord:
    """Raises: ForecastNotFound (unknown, another tenant's, or a forecast)."""
    return await services.forecasts.get(detection_id, principal.scope, ForecastKind.DETECTION)


async def _page(
    detection: ForecastRecord, events: bool, page: int, page_size: int, series: str | None
) -> tuple[list[dict[str, Any]], int]:
    """A page of the detection's rows (or of its ``events``), of every series or of one;
    none until it has completed."""
    if detection.status is not ForecastStatus.COMPLETED:
        return [], 0
    rows = _completed(detection)
    location = events_location(str(rows)) if events else rows
    frame, total = await asyncio.to_thread(
        forecast_page, location, (page - 1) * page_size, page_size, series
    )
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{str(k): v for k, v in row.items()} for row in records], total


def _completed(detection: ForecastRecord) -> Location:
    """Its rows' file. Raises: Conflict (it has not completed)."""
    if detection.status is not ForecastStatus.COMPLETED or detection.artifact_uri is None:
        raise Conflict(
            f"detection {detection.forecast_id} is {detection.status}; its rows are there "
            "once it has completed"
        )
    return Location(detection.artifact_uri)
