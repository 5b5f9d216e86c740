"""Experiments: search, read one, its metric series, and compare several."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from db.records import ExperimentFilters, ExperimentOrder
from domain.comparison import (
    WINDOW_METRIC,
    align_curves,
    compare_metrics,
    compare_params,
    compare_windows,
)
from domain.errors import InvalidRequest, JobNotFound
from domain.jobs import ExperimentStatus
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import IdFilter, MetricFilter, NameFilter, ResourceId, UtcQuery
from serve_app.schemas.experiments import (
    AlignedCurvePublic,
    CompareRequest,
    ExperimentComparison,
    ExperimentDetail,
    ExperimentPublic,
    ExperimentsPublic,
    JobLineage,
    MetricComparison,
    MetricPointPublic,
    MetricSeries,
    ParamComparison,
    WindowComparisonPublic,
)

router = APIRouter(prefix="/ai/training/experiments", tags=["experiments"])

ExperimentId = ResourceId
METRIC_ORDER = r"^(created_at|metric\.[A-Za-z0-9_.-]{1,64})$"
#: A metric's step, as the database holds it (a 32-bit integer).
Step = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


@router.get("", response_model=ExperimentsPublic)
async def list_experiments(
    services: ServicesDep,
    principal: PrincipalDep,
    tenant_id: NameFilter = None,
    job_id: IdFilter = None,
    model_name: NameFilter = None,
    status: ExperimentStatus | None = None,
    created_after: UtcQuery = None,
    created_before: UtcQuery = None,
    order_by: Annotated[
        str, Query(pattern=METRIC_ORDER, description="created_at, or metric.<name>")
    ] = "created_at",
    order: Literal["asc", "desc"] = "desc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ExperimentsPublic:
    """Experiments, newest first by default; ``order_by=metric.mae`` sorts by a final metric
    (experiments without it come last)."""
    filters = ExperimentFilters(
        principal.tenant_filter(tenant_id),
        job_id,
        model_name,
        status,
        created_after,
        created_before,
    )
    metric = order_by.removeprefix("metric.") if order_by.startswith("metric.") else None
    result = await services.experiments.search(
        filters, ExperimentOrder(metric, order == "desc"), page, page_size
    )
    return ExperimentsPublic.of(result)


@router.get("/{experiment_id}", response_model=ExperimentDetail)
async def get_experiment(
    experiment_id: ExperimentId, services: ServicesDep, principal: PrincipalDep
) -> ExperimentDetail:
    """Status, every parameter, final metrics, the model and the job that produced it."""
    record = await services.experiments.get(experiment_id, principal.scope)
    job = None
    if record.job_id is not None:
        try:
            job = JobLineage.model_validate(await services.store.get_job(record.job_id))
        except JobNotFound:
            job = None
    summary = ExperimentPublic.model_validate(record).model_dump()
    return ExperimentDetail(**summary, params=dict(record.params), job=job)


@router.get("/{experiment_id}/metrics", response_model=MetricSeries)
async def experiment_metrics(
    experiment_id: ExperimentId,
    services: ServicesDep,
    principal: PrincipalDep,
    name: MetricFilter = None,
    min_step: Step = None,
    max_step: Step = None,
) -> MetricSeries:
    """Metric points ordered by name, then step."""
    if min_step is not None and max_step is not None and min_step > max_step:
        raise InvalidRequest("query.min_step", "min_step must not exceed max_step")
    await services.experiments.get(experiment_id, principal.scope)
    series = await services.experiments.series([experiment_id], name, min_step, max_step)
    points = [MetricPointPublic.model_validate(p) for p in series.points[experiment_id]]
    return MetricSeries(
        experiment_id=experiment_id, points=points, truncated=bool(series.truncated)
    )


@router.post("/compare", response_model=ExperimentComparison)
async def compare_experiments(
    body: CompareRequest, services: ServicesDep, principal: PrincipalDep
) -> ExperimentComparison:
    """Parameters (differences marked), final metrics (best marked), one aligned curve, and
    which won over the validation windows (HPO trials against the first one given)."""
    records = await services.experiments.get_many(body.experiment_ids, principal.scope)
    series = await services.experiments.series(body.experiment_ids, body.metric)
    curve = align_curves(
        body.metric,
        {eid: [(p.step, p.value) for p in points] for eid, points in series.points.items()},
    )
    windows = (await services.experiments.series(body.experiment_ids, WINDOW_METRIC)).points
    judged = compare_windows({eid: [p.value for p in points] for eid, points in windows.items()})
    return ExperimentComparison(
        experiments=[ExperimentPublic.model_validate(r) for r in records],
        params=[
            ParamComparison.model_validate(row)
            for row in compare_params({r.experiment_id: r.params for r in records})
        ],
        metrics=[
            MetricComparison.model_validate(row)
            for row in compare_metrics({r.experiment_id: r.metrics for r in records})
        ],
        curve=AlignedCurvePublic.model_validate(curve),
        truncated=list(series.truncated),
        windows=None if judged is None else WindowComparisonPublic.model_validate(judged),
    )
