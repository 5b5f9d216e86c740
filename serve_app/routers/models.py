"""The model registry: versions, aliases, and predictions from a version or an alias."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response, status

from actors.client import translated_ray_errors
from db.promotions import BY_HAND, PromotionStore
from db.records import ModelFilters, ModelRecord
from domain.auth import Principal
from domain.errors import AliasNotFound, InvalidRequest, ModelNotFound, SeriesMetricsNotFound
from domain.jobs import ModelType
from domain.names import NAME_PATTERN, model_id
from pipeline.models.artifacts import load_series_metrics, predictions_csv, predictions_page
from pipeline.storage import Location
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import NameFilter, NamePath, ResourceId
from serve_app.responses import CSV_RESPONSE, csv_download, wants_csv
from serve_app.schemas.models import (
    ALIAS_PATTERN,
    AliasUpdate,
    AnomalyEventPublic,
    EvaluatedPredictionsPublic,
    ModelPublic,
    ModelsPublic,
    PredictionPublic,
    PredictionsPublic,
    PredictRequest,
    SeriesMetricsPagePublic,
    SeriesMetricsPublic,
)
from serve_app.schemas.promotions import PromotionPublic, PromotionsPublic, RollbackRequest

router = APIRouter(prefix="/ai/models", tags=["models"])
#: Routes matched before the forecasts' and detections' (``create_app``): a tenant may be
#: named ``forecasts``, and ``/ai/models/forecasts/m@champion`` is then an alias, not a
#: forecast id (ids never hold an ``@``).
alias_router = APIRouter(prefix="/ai/models", tags=["models"])

ModelId = ResourceId
Tenant = NamePath
ModelName = Annotated[str, Path(pattern=NAME_PATTERN)]
Alias = Annotated[str, Path(pattern=ALIAS_PATTERN)]
SERIES_ORDER = r"^(series|rows|mae|rmse|mase|coverage_\d{1,3})$"
#: A quantile's column in test_predictions.parquet: q0.1, q0.025, q1e-05.
QUANTILE_COLUMN = r"q[0-9][0-9.e-]*"


@router.get("", response_model=ModelsPublic)
async def list_models(
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: NameFilter = None,
    model_name: NameFilter = None,
    model_type: ModelType | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ModelsPublic:
    """Registered versions, newest first."""
    filters = ModelFilters(principal.tenant_filter(tenant_id), model_name, model_type)
    result = await services.registry.search(filters, page, page_size)
    return ModelsPublic.of(result)


@router.get("/{model_id}", response_model=ModelPublic)
async def get_model(
    model_id: ModelId, services: ServicesDep, principal: PrincipalDep
) -> ModelPublic:
    return ModelPublic.model_validate(await visible_model(model_id, services, principal))


@router.get(
    "/{model_id}/test-predictions",
    response_model=EvaluatedPredictionsPublic,
    responses=CSV_RESPONSE,
)
async def get_test_predictions(
    model_id: ModelId,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    series: Annotated[
        str | None, Query(min_length=1, max_length=256, description="One series' rows only.")
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EvaluatedPredictionsPublic | Response:
    """The untouched test period as evaluated at registration, a page of rows by time
    (each time's series together; ``series`` for one series' rows alone): actual against
    predicted, with the forecast quantiles; ``total`` counts them all. With ``Accept:
    text/csv``, every row as CSV, streamed."""
    model = await visible_model(model_id, services, principal)
    directory = Location(model.artifact_uri)
    if wants_csv(request):
        return csv_download(
            predictions_csv(directory, series),
            f"test-predictions-{model.model_id.replace(':', '-')}.csv",
        )
    offset = (page - 1) * page_size
    table, total = await asyncio.to_thread(predictions_page, directory, offset, page_size, series)
    quantile_columns = {
        column: column.removeprefix("q")
        for column in table.columns
        if re.fullmatch(QUANTILE_COLUMN, column)
    }
    rows = [
        PredictionPublic(
            timestamp=row["timestamp"],
            series=row.get("series"),
            predicted=row["predicted"],
            actual=row["actual"],
            anomaly=row.get("anomaly"),
            anomaly_score=row.get("anomaly_score"),
            quantiles={key: row[column] for column, key in quantile_columns.items()} or None,
        )
        for row in table.to_dict("records")
    ]
    return EvaluatedPredictionsPublic(
        model_id=model.model_id, predictions=rows, total=total, page=page, page_size=page_size
    )


@router.get("/{model_id}/series-metrics", response_model=SeriesMetricsPagePublic)
async def series_metrics(
    model_id: ModelId,
    services: ServicesDep,
    principal: PrincipalDep,
    order_by: Annotated[str, Query(pattern=SERIES_ORDER)] = "mase",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SeriesMetricsPagePublic:
    """Per-series test accuracy of a model trained on a multi-series set (MAE, RMSE, MASE,
    interval coverage), worst MASE first by default. 404 for a single-series model."""
    model = await visible_model(model_id, services, principal)
    table = await asyncio.to_thread(load_series_metrics, Location(model.artifact_uri))
    if table is None:
        raise SeriesMetricsNotFound(model_id)
    if order_by not in table.columns:
        known = sorted(c for c in table.columns if re.fullmatch(SERIES_ORDER, c))
        raise InvalidRequest(
            "query.order_by", f"{order_by!r} is not a column here; use one of {known}"
        )
    ordered = table.sort_values(
        [order_by, "series"], ascending=[order == "asc", True], na_position="last", kind="stable"
    )
    chunk = ordered.iloc[(page - 1) * page_size : page * page_size]
    coverage = [c for c in table.columns if c.startswith("coverage_")]
    return SeriesMetricsPagePublic(
        model_id=model.model_id,
        series=[
            SeriesMetricsPublic(
                series=str(row["series"]),
                rows=int(row["rows"]),
                mae=float(row["mae"]),
                rmse=float(row["rmse"]),
                mase=None if pd.isna(row["mase"]) else float(row["mase"]),
                coverage={c.removeprefix("coverage_"): float(row[c]) for c in coverage},
            )
            for row in chunk.to_dict("records")
        ],
        total=len(table),
        page=page,
        page_size=page_size,
    )


@alias_router.get("/{tenant_id}/{model_name}@{alias}", response_model=ModelPublic)
async def resolve_alias(
    tenant_id: Tenant,
    model_name: ModelName,
    alias: Alias,
    services: ServicesDep,
    principal: PrincipalDep,
) -> ModelPublic:
    """The version an alias (e.g. ``champion``) points at."""
    model = await resolved(tenant_id, model_name, alias, services, principal)
    return ModelPublic.model_validate(model)


@router.put("/{tenant_id}/{model_name}/aliases/{alias}", response_model=ModelPublic)
async def set_alias(
    tenant_id: Tenant,
    model_name: ModelName,
    alias: Alias,
    body: AliasUpdate,
    services: ServicesDep,
    principal: PrincipalDep,
) -> ModelPublic:
    """Point an alias at a version, moving it if it points elsewhere."""
    if not principal.sees(tenant_id):
        raise ModelNotFound(model_id(tenant_id, model_name, body.version))
    principal.require_write(tenant_id)
    model = await services.orchestrator.set_alias(tenant_id, model_name, alias, body.version)
    return ModelPublic.model_validate(model)


@router.delete("/{tenant_id}/{model_name}/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_alias(
    tenant_id: Tenant,
    model_name: ModelName,
    alias: Alias,
    services: ServicesDep,
    principal: PrincipalDep,
) -> Response:
    if not principal.sees(tenant_id):
        raise AliasNotFound(f"{tenant_id}/{model_name}", alias)
    principal.require_write(tenant_id)
    await services.orchestrator.delete_alias(tenant_id, model_name, alias)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{tenant_id}/{model_name}/promotions", response_model=PromotionsPublic)
async def list_promotions(
    tenant_id: Tenant,
    model_name: ModelName,
    services: ServicesDep,
    principal: PrincipalDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PromotionsPublic:
    """The decisions on the model's ``champion`` alias, newest first: each job's model
    promoted or kept on its comparison with the champion over the same rows, and
    rollbacks, with their evidence."""
    if not principal.sees(tenant_id):
        raise ModelNotFound(f"{tenant_id}:{model_name}")
    found = await PromotionStore(services.store.database).list(
        tenant_id, model_name, page, page_size
    )
    return PromotionsPublic(
        promotions=[PromotionPublic.of(record) for record in found.items],
        total=found.total,
        page=found.page,
        page_size=found.page_size,
    )


@router.post("/{tenant_id}/{model_name}/rollback", response_model=PromotionPublic)
async def rollback(
    tenant_id: Tenant,
    model_name: ModelName,
    services: ServicesDep,
    principal: PrincipalDep,
    body: RollbackRequest | None = None,
) -> PromotionPublic:
    """Point ``champion`` back at the version the latest promotion replaced; the rollback
    is stored as a decision. 409 when there is none to go back to."""
    if not principal.sees(tenant_id):
        raise ModelNotFound(f"{tenant_id}:{model_name}")
    principal.require_write(tenant_id)
    reason = body.reason if body is not None and body.reason else BY_HAND
    record = await services.orchestrator.rollback(tenant_id, model_name, reason)
    return PromotionPublic.of(record)


@router.post("/{model_id}/predict", response_model=PredictionsPublic)
async def predict(
    model_id: ModelId, body: PredictRequest, services: ServicesDep, principal: PrincipalDep
) -> PredictionsPublic:
    """Forecasts (and, for anomaly models, flags and scores) from raw feature-set rows."""
    model = await visible_model(model_id, services, principal)
    return await _predict(model, body, services, principal)


@router.post("/{tenant_id}/{model_name}@{alias}/predict", response_model=PredictionsPublic)
async def predict_alias(
    tenant_id: Tenant,
    model_name: ModelName,
    alias: Alias,
    body: PredictRequest,
    services: ServicesDep,
    principal: PrincipalDep,
) -> PredictionsPublic:
    """Predict with the version an alias points at."""
    model = await resolved(tenant_id, model_name, alias, services, principal)
    return await _predict(model, body, services, principal)


async def _predict(
    model: ModelRecord, body: PredictRequest, services: ServicesDep, principal: Principal
) -> PredictionsPublic:
    """Raises: Forbidden: ``log`` (a forecast kept, and scored later) from a viewer key."""
    if body.log:
        principal.require_write(model.tenant_id)
    if body.log and model.model_type is not ModelType.FORECAST:
        raise InvalidRequest("log", "only a forecasting model's predictions are kept")
    with translated_ray_errors("the model server"):
        predictions = await services.model_server.predict.remote(
            model.artifact_uri, body.rows, body.explain
        )
    public = [PredictionPublic.model_validate(p) for p in predictions.rows]
    logged = None
    if body.log:
        kept = [
            p.model_dump(include={"timestamp", "series", "predicted", "actual", "quantiles"})
            for p in public
        ]
        logged = await services.orchestrator.log_predictions(model.model_id, kept)
    return PredictionsPublic(
        model_id=model.model_id,
        predictions=public,
        events=None
        if predictions.events is None
        else [AnomalyEventPublic.model_validate(e) for e in predictions.events],
        forecast_id=logged.forecast_id if logged is not None else None,
    )


async def visible_model(model_id: str, services: ServicesDep, principal: Principal) -> ModelRecord:
    """Raises: ModelNotFound (no such model, or another tenant's)."""
    model = await services.registry.get(model_id)
    if not principal.sees(model.tenant_id):
        raise ModelNotFound(model_id)
    return model


async def resolved(
    tenant_id: str, model_name: str, alias: str, services: ServicesDep, principal: Principal
) -> ModelRecord:
    """Raises: AliasNotFound (no such alias, or another tenant's model)."""
    if not principal.sees(tenant_id):
        raise AliasNotFound(f"{tenant_id}/{model_name}", alias)
    return await services.registry.resolve(tenant_id, model_name, alias)
