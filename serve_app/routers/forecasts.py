"""Batch forecasts: start one from a model version or an alias, list them, follow one,
read its rows (a page as JSON, or all of it as CSV with ``Accept: text/csv``)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from db.records import ForecastFilters, ForecastRecord, ModelRecord, NewForecast
from domain.auth import Principal
from domain.errors import Conflict
from domain.forecasts import ForecastKind, ForecastStatus
from pipeline.forecast_files import forecast_csv, forecast_page
from pipeline.storage import Location
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import IdFilter, NameFilter, ResourceId, SeriesFilter
from serve_app.responses import CSV_RESPONSE, csv_download, wants_csv
from serve_app.routers.models import (
    QUANTILE_COLUMN,
    Alias,
    ModelName,
    Tenant,
    resolved,
    visible_model,
)
from serve_app.schemas.forecasts import (
    ForecastCreate,
    ForecastPagePublic,
    ForecastPublic,
    ForecastRowPublic,
    ForecastsPublic,
)

router = APIRouter(prefix="/ai/models", tags=["forecasts"])


@router.post(
    "/{model_id}/forecasts", status_code=status.HTTP_201_CREATED, response_model=ForecastPublic
)
async def start_forecast(
    model_id: ResourceId, body: ForecastCreate, services: ServicesDep, principal: PrincipalDep
) -> ForecastPublic:
    """Forecast the next ``horizon`` steps of a feature set's series in the background;
    follow it at ``GET /ai/models/forecasts/{forecast_id}``."""
    model = await visible_model(model_id, services, principal)
    return await _start(model, body, services, principal)


@router.post(
    "/{tenant_id}/{model_name}@{alias}/forecasts",
    status_code=status.HTTP_201_CREATED,
    response_model=ForecastPublic,
)
async def start_forecast_alias(
    tenant_id: Tenant,
    model_name: ModelName,
    alias: Alias,
    body: ForecastCreate,
    services: ServicesDep,
    principal: PrincipalDep,
) -> ForecastPublic:
    """A batch forecast with the version an alias points at (resolved now)."""
    model = await resolved(tenant_id, model_name, alias, services, principal)
    return await _start(model, body, services, principal)


@router.get("/forecasts", response_model=ForecastsPublic)
async def list_forecasts(
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: NameFilter = None,
    model_id: IdFilter = None,
    status: ForecastStatus | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ForecastsPublic:
    """Batch forecasts, newest first (a tenant's key sees its own)."""
    filters = ForecastFilters(principal.tenant_filter(tenant_id), model_id, status)
    return ForecastsPublic.of(await services.forecasts.search(filters, page, page_size))


@router.get("/forecasts/{forecast_id}", response_model=ForecastPagePublic, responses=CSV_RESPONSE)
async def get_forecast(
    forecast_id: ResourceId,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    series: SeriesFilter = None,
) -> ForecastPagePublic | Response:
    """Its status and progress, and a page of its rows (or of one ``series``' rows) by
    series then time; with ``Accept: text/csv``, every row (of the ``series``) as CSV
    (400 until it has completed)."""
    forecast = await services.forecasts.get(forecast_id, principal.scope, ForecastKind.FORECAST)
    if wants_csv(request):
        csv = forecast_csv(_rows_of(forecast), series=series)
        return csv_download(csv, f"forecast-{forecast_id}.csv")
    rows: list[ForecastRowPublic] = []
    total = 0
    if forecast.status is ForecastStatus.COMPLETED:
        offset = (page - 1) * page_size
        frame, total = await asyncio.to_thread(
            forecast_page, _rows_of(forecast), offset, page_size, series
        )
        quantiles = {
            c: c.removeprefix("q") for c in frame.columns if re.fullmatch(QUANTILE_COLUMN, c)
        }
        rows = [
            ForecastRowPublic(
                series=row["series"],
                timestamp=row["timestamp"],
                predicted=row["predicted"],
                quantiles={key: row[column] for column, key in quantiles.items()} or None,
            )
            for row in frame.to_dict("records")
        ]
    return ForecastPagePublic(
        forecast=ForecastPublic.model_validate(forecast),
        predictions=rows,
        total=total,
        page=page,
        page_size=page_size,
    )


async def _start(
    model: ModelRecord, body: ForecastCreate, services: ServicesDep, principal: Principal
) -> ForecastPublic:
    principal.require_write(model.tenant_id)
    forecast = NewForecast(
        tenant_id=model.tenant_id,
        model_id=model.model_id,
        feature_set=body.feature_set,
        horizon=body.horizon,
        series=tuple(body.series) if body.series is not None else None,
    )
    return ForecastPublic.model_validate(await services.orchestrator.start_forecast(forecast))


def _rows_of(forecast: ForecastRecord) -> Location:
    """Raises: Conflict (the forecast has not completed)."""
    if forecast.status is not ForecastStatus.COMPLETED or forecast.artifact_uri is None:
        raise Conflict(
            f"forecast {forecast.forecast_id} is {forecast.status}; its rows are "
            "there once it has completed"
        )
    return Location(forecast.artifact_uri)
