"""Batch forecasts and detections: their rows, their listing and every change of their
status (a detection is a row of kind ``detection``, with its window and its events).

Each change is a compare-and-set on the status (``UPDATE ... WHERE status IN (...)``), so
a late report from a run that recovery has already given up on changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from db.database import Database
from db.models import BatchForecast
from db.paging import paginate
from db.records import ForecastFilters, ForecastRecord, NewForecast, Page
from domain.errors import ForecastNotFound
from domain.forecasts import ForecastKind, ForecastSource, ForecastStatus


class ForecastStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def search(
        self, filters: ForecastFilters, page: int, page_size: int
    ) -> Page[ForecastRecord]:
        """One page (1-based) of matching forecasts (of ``filters.kind``), newest first, and
        the match count."""
        conditions = [BatchForecast.kind == filters.kind.value]
        if filters.tenant_id is not None:
            conditions.append(BatchForecast.tenant_id == filters.tenant_id)
        if filters.model_id is not None:
            conditions.append(BatchForecast.model_id == filters.model_id)
        if filters.status is not None:
            conditions.append(BatchForecast.status == filters.status.value)
        query = (
            select(BatchForecast)
            .where(*conditions)
            .order_by(BatchForecast.created_at.desc(), BatchForecast.forecast_id)
        )
        async with self._database.transaction() as session:
            found = await paginate(session, query, page, page_size)
        return found.with_items([_record(row) for row in found.items])

    async def create(self, forecast: NewForecast, now: datetime) -> ForecastRecord:
        """Insert the forecast as ``queued``."""
        row = BatchForecast(
            forecast_id=forecast.forecast_id,
            tenant_id=forecast.tenant_id,
            model_id=forecast.model_id,
            feature_set=forecast.feature_set,
            horizon=forecast.horizon,
            series=list(forecast.series) if forecast.series is not None else None,
            status=ForecastStatus.QUEUED.value,
            source=ForecastSource.BATCH.value,
            kind=forecast.kind.value,
            window_start=forecast.window_start,
            window_end=forecast.window_end,
            progress=0.0,
            attempts=0,
            created_at=now,
        )
        async with self._database.transaction() as session:
            session.add(row)
        return _record(row)

    async def add_logged(
        self, forecast: NewForecast, rows: int, artifact_uri: str, now: datetime
    ) -> ForecastRecord:
        """Insert a request's forecasts, kept because it asked (``log``), as ``completed``:
        its rows are already written at ``artifact_uri``."""
        row = BatchForecast(
            forecast_id=forecast.forecast_id,
            tenant_id=forecast.tenant_id,
            model_id=forecast.model_id,
            feature_set=forecast.feature_set,
            horizon=forecast.horizon,
            series=None,
            status=ForecastStatus.COMPLETED.value,
            source=ForecastSource.PREDICT.value,
            progress=1.0,
            attempts=1,
            rows=rows,
            artifact_uri=artifact_uri,
            created_at=now,
            started_at=now,
            finished_at=now,
        )
        async with self._database.transaction() as session:
            session.add(row)
        return _record(row)

    async def get(
        self, forecast_id: str, tenant_id: str | None = None, kind: ForecastKind | None = None
    ) -> ForecastRecord:
        """Raises: ForecastNotFound (unknown, another tenant's when ``tenant_id`` is given,
        or of another kind when ``kind`` is)."""
        async with self._database.transaction() as session:
            row = await session.get(BatchForecast, forecast_id)
        if (
            row is None
            or (tenant_id is not None and row.tenant_id != tenant_id)
            or (kind is not None and row.kind != kind.value)
        ):
            raise ForecastNotFound(forecast_id)
        return _record(row)

    async def in_status(self, *statuses: ForecastStatus) -> list[ForecastRecord]:
        """The forecasts in any of ``statuses``, oldest first."""
        query = (
            select(BatchForecast)
            .where(BatchForecast.status.in_([s.value for s in statuses]))
            .order_by(BatchForecast.created_at)
        )
        async with self._database.transaction() as session:
            return [_record(row) for row in (await session.scalars(query)).all()]

    async def start(self, forecast_id: str, now: datetime) -> bool:
        """queued → running, counting the attempt; False if it was not queued."""
        return await self._move(
            forecast_id,
            (ForecastStatus.QUEUED,),
            status=ForecastStatus.RUNNING.value,
            progress=0.0,
            started_at=now,
            attempts=BatchForecast.attempts + 1,
        )

    async def set_progress(self, forecast_id: str, progress: float) -> bool:
        """The share of series forecast so far, while it runs."""
        value = min(max(progress, 0.0), 1.0)
        return await self._move(forecast_id, (ForecastStatus.RUNNING,), progress=value)

    async def complete(
        self,
        forecast_id: str,
        rows: int,
        artifact_uri: str,
        now: datetime,
        events: int | None = None,
    ) -> bool:
        """running → completed with its rows written at ``artifact_uri`` (and a
        detection's ``events`` next to them)."""
        return await self._move(
            forecast_id,
            (ForecastStatus.RUNNING,),
            status=ForecastStatus.COMPLETED.value,
            progress=1.0,
            rows=rows,
            artifact_uri=artifact_uri,
            events=events,
            finished_at=now,
        )

    async def fail(self, forecast_id: str, error: str, now: datetime) -> bool:
        """queued or running → failed, saying why."""
        return await self._move(
            forecast_id,
            (ForecastStatus.QUEUED, ForecastStatus.RUNNING),
            status=ForecastStatus.FAILED.value,
            error=error,
            finished_at=now,
        )

    async def requeue(self, forecast_id: str) -> bool:
        """running → queued: its run was lost and it is to run again."""
        return await self._move(
            forecast_id, (ForecastStatus.RUNNING,), status=ForecastStatus.QUEUED.value
        )

    async def _move(
        self, forecast_id: str, current: Sequence[ForecastStatus], **values: Any
    ) -> bool:
        statement = (
            update(BatchForecast)
            .where(BatchForecast.forecast_id == forecast_id)
            .where(BatchForecast.status.in_([s.value for s in current]))
            .values(**values)
        )
        async with self._database.transaction() as session:
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))


def _record(row: BatchForecast) -> ForecastRecord:
    return ForecastRecord(
        forecast_id=row.forecast_id,
        tenant_id=row.tenant_id,
        model_id=row.model_id,
        feature_set=row.feature_set,
        horizon=row.horizon,
        series=tuple(row.series) if row.series is not None else None,
        status=ForecastStatus(row.status),
        progress=row.progress,
        attempts=row.attempts,
        rows=row.rows,
        artifact_uri=row.artifact_uri,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        source=ForecastSource(row.source),
        kind=ForecastKind(row.kind),
        window_start=row.window_start,
        window_end=row.window_end,
        events=row.events,
    )
