"""Monitoring's rows: stored forecasts scored against their actuals, one row per forecast
(replaced when a later feature-set version brings more of its actuals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from db.database import Database
from db.models import BatchForecast, MonitorEvaluation
from db.paging import paginate
from db.records import Page
from domain.errors import EvaluationNotFound
from domain.forecasts import ForecastKind, ForecastSource, ForecastStatus

#: Kept on a replaced evaluation when the new one has none.
SHADOW_COLUMNS = frozenset({"shadow_promotion_id", "shadow"})


@dataclass(frozen=True)
class Unscored:
    """A completed forecast whose actuals have not all been scored."""

    forecast_id: str
    model_id: str
    tenant_id: str
    feature_set: str
    source: ForecastSource
    artifact_uri: str
    created_at: datetime
    #: The set version its last evaluation used (None: never evaluated).
    evaluated_version: str | None


@dataclass(frozen=True)
class NewEvaluation:
    forecast_id: str
    model_id: str
    tenant_id: str
    feature_set: str
    feature_set_version: str
    origin: datetime
    forecast_rows: int
    rows: int
    metrics: dict[str, float]
    by_lead: list[dict[str, Any]]
    by_series: dict[str, Any]
    health: dict[str, Any]
    evaluated_at: datetime
    #: The promotion whose rollback rule had the previous champion forecast these rows,
    #: and both models' scores (``pipeline.monitoring.shadow``; None: not shadowed).
    shadow_promotion_id: str | None = None
    shadow: dict[str, Any] | None = None


EvaluationRecord = NewEvaluation


class MonitorStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def unscored(
        self, created_after: datetime, limit: int, after_id: str | None = None
    ) -> list[Unscored]:
        """Completed forecasts created after ``created_after`` (or at it, with an id after
        ``after_id``: the next page) that have rows without a score (never evaluated, or
        evaluated before all their actuals arrived), oldest first."""
        later = BatchForecast.created_at > created_after
        if after_id is not None:
            later = or_(
                later,
                and_(
                    BatchForecast.created_at == created_after,
                    BatchForecast.forecast_id > after_id,
                ),
            )
        query = (
            select(BatchForecast, MonitorEvaluation.feature_set_version)
            .outerjoin(
                MonitorEvaluation, MonitorEvaluation.forecast_id == BatchForecast.forecast_id
            )
            .where(
                BatchForecast.status == ForecastStatus.COMPLETED.value,
                BatchForecast.kind == ForecastKind.FORECAST.value,
                BatchForecast.artifact_uri.is_not(None),
                later,
                or_(
                    MonitorEvaluation.forecast_id.is_(None),
                    MonitorEvaluation.rows < MonitorEvaluation.forecast_rows,
                ),
            )
            .order_by(BatchForecast.created_at, BatchForecast.forecast_id)
            .limit(limit)
        )
        async with self._database.transaction() as session:
            rows = (await session.execute(query)).all()
        return [
            Unscored(
                forecast_id=forecast.forecast_id,
                model_id=forecast.model_id,
                tenant_id=forecast.tenant_id,
                feature_set=forecast.feature_set,
                source=ForecastSource(forecast.source),
                artifact_uri=forecast.artifact_uri or "",
                created_at=forecast.created_at,
                evaluated_version=version,
            )
            for forecast, version in rows
        ]

    async def recent_maes(
        self, model_id: str, before: datetime, count: int, scored_share: float = 0.0
    ) -> list[tuple[str, datetime, float]]:
        """The (forecast id, origin, MAE) of the model's ``count`` latest scored forecasts
        before ``before`` (with at least ``scored_share`` of their rows scored), oldest
        first."""
        query = (
            select(
                MonitorEvaluation.forecast_id, MonitorEvaluation.origin, MonitorEvaluation.metrics
            )
            .where(
                MonitorEvaluation.model_id == model_id,
                MonitorEvaluation.origin < before,
                MonitorEvaluation.rows > 0,
                MonitorEvaluation.rows >= MonitorEvaluation.forecast_rows * scored_share,
            )
            .order_by(MonitorEvaluation.origin.desc())
            .limit(count)
        )
        async with self._database.transaction() as session:
            rows = (await session.execute(query)).all()
        found = [(key, origin, float(metrics["mae"])) for key, origin, metrics in rows]
        return sorted(found, key=lambda row: row[1])

    async def save(self, evaluations: list[NewEvaluation]) -> None:
        """Insert each evaluation, or replace the one its forecast had. Its shadow scores
        are kept when the new one brings none (a rule's evidence is not lost once its
        check has ended) or compared no row (the previous champion failed this time)."""
        async with self._database.transaction() as session:
            for evaluation in evaluations:
                row = await session.get(MonitorEvaluation, evaluation.forecast_id)
                if row is None:
                    session.add(MonitorEvaluation(**evaluation.__dict__))
                    continue
                keep_shadow = not _compared(evaluation.shadow) and _compared(row.shadow)
                for name, value in evaluation.__dict__.items():
                    if name not in SHADOW_COLUMNS or (value is not None and not keep_shadow):
                        setattr(row, name, value)

    async def shadowed(self, promotion_id: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """The (forecast id, shadow scores) of the first ``limit`` scored forecasts shadowed
        for ``promotion_id``'s rollback rule, by forecast date."""
        query = (
            select(MonitorEvaluation.forecast_id, MonitorEvaluation.shadow)
            .where(
                MonitorEvaluation.shadow_promotion_id == promotion_id,
                MonitorEvaluation.rows > 0,
            )
            .order_by(MonitorEvaluation.origin, MonitorEvaluation.forecast_id)
            .limit(limit)
        )
        async with self._database.transaction() as session:
            rows = (await session.execute(query)).all()
        return [(forecast_id, shadow) for forecast_id, shadow in rows if shadow]

    async def search(
        self,
        model_id: str,
        since: datetime | None,
        until: datetime | None,
        page: int,
        page_size: int,
    ) -> Page[EvaluationRecord]:
        """One page of the model's scored forecasts (with actuals) by forecast date, the
        latest first, from ``since`` (inclusive) to ``until`` (exclusive)."""
        conditions = [MonitorEvaluation.model_id == model_id, MonitorEvaluation.rows > 0]
        if since is not None:
            conditions.append(MonitorEvaluation.origin >= since)
        if until is not None:
            conditions.append(MonitorEvaluation.origin < until)
        query = (
            select(MonitorEvaluation)
            .where(and_(*conditions))
            .order_by(MonitorEvaluation.origin.desc(), MonitorEvaluation.forecast_id.desc())
        )
        async with self._database.transaction() as session:
            found = await paginate(session, query, page, page_size)
        return found.with_items([_record(row) for row in found.items])

    async def get(self, model_id: str, forecast_id: str) -> EvaluationRecord:
        """Raises: EvaluationNotFound: the model has no scored forecast of that id."""
        async with self._database.transaction() as session:
            row = await session.get(MonitorEvaluation, forecast_id)
        if row is None or row.model_id != model_id or not row.rows:
            raise EvaluationNotFound(forecast_id)
        return _record(row)

    async def latest(self, model_id: str, scored_share: float = 0.0) -> EvaluationRecord | None:
        """The model's scored forecast of the latest forecast date, of those with at least
        ``scored_share`` of their rows scored (None: none yet)."""
        if not scored_share:
            page = await self.search(model_id, None, None, 1, 1)
            return page.items[0] if page.items else None
        query = (
            select(MonitorEvaluation)
            .where(
                MonitorEvaluation.model_id == model_id,
                MonitorEvaluation.rows > 0,
                MonitorEvaluation.rows >= MonitorEvaluation.forecast_rows * scored_share,
            )
            # ties as search breaks them: the last a pass judged, over the most windows
            .order_by(MonitorEvaluation.origin.desc(), MonitorEvaluation.forecast_id.desc())
            .limit(1)
        )
        async with self._database.transaction() as session:
            row = await session.scalar(query)
        return _record(row) if row is not None else None


def _record(row: MonitorEvaluation) -> EvaluationRecord:
    return EvaluationRecord(
        forecast_id=row.forecast_id,
        model_id=row.model_id,
        tenant_id=row.tenant_id,
        feature_set=row.feature_set,
        feature_set_version=row.feature_set_version,
        origin=row.origin,
        forecast_rows=row.forecast_rows,
        rows=row.rows,
        metrics=row.metrics,
        by_lead=row.by_lead,
        by_series=row.by_series,
        health=row.health,
        evaluated_at=row.evaluated_at,
        shadow_promotion_id=row.shadow_promotion_id,
        shadow=row.shadow,
    )


def _compared(shadow: dict[str, Any] | None) -> bool:
    """Whether shadow scores paired any row (``pipeline.monitoring.shadow``)."""
    return shadow is not None and int(shadow.get("rows") or 0) > 0
