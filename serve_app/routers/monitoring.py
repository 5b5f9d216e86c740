"""A model's monitoring: its served forecasts scored against their actuals, over time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pipeline.monitoring.drift import SCORED_SHARE
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import ResourceId, UtcQuery
from serve_app.routers.models import visible_model
from serve_app.schemas.monitoring import (
    EvaluationDetailPublic,
    EvaluationPublic,
    HealthPublic,
    MonitoringPublic,
)

router = APIRouter(prefix="/ai/models", tags=["monitoring"])

#: The test metrics shown beside the live ones.
TEST_METRICS = ("mae", "rmse", "coverage_80", "wql")


@router.get("/{model_id}/monitoring", response_model=MonitoringPublic)
async def get_monitoring(
    model_id: ResourceId,
    services: ServicesDep,
    principal: PrincipalDep,
    since: Annotated[UtcQuery, Query(description="Forecast dates from (inclusive).")] = None,
    until: Annotated[UtcQuery, Query(description="Forecast dates to (exclusive).")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MonitoringPublic:
    """The model's batch forecasts (and logged predictions) scored against their actuals
    once these arrived, by forecast date (as Amazon Forecast's monitor evaluations), with
    the model's test metrics and its drift status as of the latest."""
    model = await visible_model(model_id, services, principal)
    found = await services.monitoring.search(model.model_id, since, until, page, page_size)
    latest = await services.monitoring.latest(model.model_id, SCORED_SHARE)
    return MonitoringPublic.of(
        found.with_items([EvaluationPublic.model_validate(e.__dict__) for e in found.items]),
        model_id=model.model_id,
        test={k: float(model.metrics[k]) for k in TEST_METRICS if k in model.metrics},
        status=HealthPublic.model_validate(latest.health) if latest is not None else None,
    )


@router.get("/{model_id}/monitoring/{forecast_id}", response_model=EvaluationDetailPublic)
async def get_evaluation(
    model_id: ResourceId, forecast_id: ResourceId, services: ServicesDep, principal: PrincipalDep
) -> EvaluationDetailPublic:
    """One scored forecast, per lead time and per series."""
    model = await visible_model(model_id, services, principal)
    evaluation = await services.monitoring.get(model.model_id, forecast_id)
    return EvaluationDetailPublic.model_validate(evaluation.__dict__)
