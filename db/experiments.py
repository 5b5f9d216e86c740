"""Experiments: written as their job runs (``ExperimentCatalog.create_experiments``,
``log_metrics``; the rows themselves in ``db.experiment_rows``) and read (filtered and
metric-sorted lists, one experiment, metric series).

An experiment's *final* value of a metric is its point with the highest step (the last
logged one on a tie), so a validation curve's final value is its last round and a test
metric logged once is itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import Database
from db.experiment_rows import add_experiments, add_metrics, decode_param
from db.models import Experiment, ExperimentMetric, ExperimentParam, TrainingJob
from db.paging import paginate
from db.records import (
    ExperimentFilters,
    ExperimentOrder,
    ExperimentRecord,
    MetricPoint,
    NewExperiment,
    Page,
)
from domain.errors import ExperimentNotFound, JobNotFound
from domain.jobs import ExperimentStatus

#: Points one series request returns at most.
MAX_SERIES_POINTS = 100_000


@dataclass(frozen=True)
class SeriesRead:
    """Metric points per experiment, and the experiments that had more than were read."""

    points: dict[str, list[MetricPoint]]
    truncated: tuple[str, ...] = ()


def fair_shares(counts: Mapping[str, int], total: int) -> dict[str, int]:
    """How many of each experiment's ``counts`` points a read of ``total`` takes: all of
    the smaller ones, and an equal share of what is left for the rest."""
    shares, left = {}, total
    ordered = sorted(counts.items(), key=lambda item: item[1])
    for index, (key, count) in enumerate(ordered):
        shares[key] = min(count, left // (len(ordered) - index))
        left -= shares[key]
    return shares


#: Points one page of ``series_pages`` holds.
SERIES_PAGE_POINTS = 10_000


def final_values(name: str | None = None) -> Select[tuple[str, str, float]]:
    """(experiment_id, metric name, final value) rows, for one metric or all of them."""
    ranked = select(
        ExperimentMetric.experiment_id,
        ExperimentMetric.name,
        ExperimentMetric.value,
        func.row_number()
        .over(
            partition_by=(ExperimentMetric.experiment_id, ExperimentMetric.name),
            order_by=(ExperimentMetric.step.desc(), ExperimentMetric.id.desc()),
        )
        .label("rank"),
    )
    if name is not None:
        ranked = ranked.where(ExperimentMetric.name == name)
    inner = ranked.subquery()
    return select(inner.c.experiment_id, inner.c.name, inner.c.value).where(inner.c.rank == 1)


async def experiments_of_job(session: AsyncSession, job_id: str) -> list[ExperimentRecord]:
    """A job's experiments with parameters and final metrics, oldest first."""
    query = (
        select(Experiment)
        .where(Experiment.job_id == job_id)
        .order_by(Experiment.created_at, Experiment.experiment_id)
    )
    rows = (await session.scalars(query)).all()
    return await _records(session, rows, with_params=True)


class ExperimentCatalog:
    """Experiments, their parameters and metrics: written as their job runs, queried."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def create_experiments(
        self, job_id: str, experiments: Sequence[NewExperiment]
    ) -> list[str]:
        """Open experiments for a job with their parameters and first metric points, in
        one transaction; their ids, in order.

        Raises:
            JobNotFound: no job has that id.
        """
        async with self._database.transaction() as session:
            # Locked: a transition committing meanwhile (a cancel) is seen, or sees these.
            job = await session.get(TrainingJob, job_id, with_for_update=True)
            if job is None:
                raise JobNotFound(job_id)
            return await add_experiments(session, job, experiments)

    async def create_experiment(
        self,
        job_id: str,
        name: str,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[MetricPoint] = (),
        status: ExperimentStatus = ExperimentStatus.RUNNING,
    ) -> str:
        """Open one experiment for a job (see ``create_experiments``); its id."""
        new = NewExperiment(name, params, metrics, status)
        [experiment_id] = await self.create_experiments(job_id, [new])
        return experiment_id

    async def log_metrics(self, experiment_id: str, points: Sequence[MetricPoint]) -> None:
        """Append metric points to an experiment in one batch."""
        if not points:
            return
        async with self._database.transaction() as session:
            await add_metrics(session, experiment_id, points)

    async def search(
        self,
        filters: ExperimentFilters,
        order: ExperimentOrder,
        page: int,
        page_size: int,
    ) -> Page[ExperimentRecord]:
        """One page (1-based) of matching experiments with final metrics and the match count."""
        matching = select(Experiment).where(*_conditions(filters))
        query = matching
        if order.metric is not None:
            finals = final_values(order.metric).subquery()
            value = finals.c.value
            query = query.outerjoin(finals, finals.c.experiment_id == Experiment.experiment_id)
            query = query.order_by(
                value.is_(None), value.desc() if order.descending else value.asc()
            )
        created = Experiment.created_at
        query = query.order_by(created.desc() if order.descending else created.asc())
        query = query.order_by(Experiment.experiment_id)
        async with self._database.transaction() as session:
            found = await paginate(session, query, page, page_size, matching=matching)
            records = await _records(session, found.items, with_params=False)
        return found.with_items(records)

    async def of_job(self, job_id: str) -> list[ExperimentRecord]:
        """A job's experiments with parameters and final metrics, oldest first."""
        async with self._database.transaction() as session:
            return await experiments_of_job(session, job_id)

    async def get_many(
        self, experiment_ids: Sequence[str], tenant_id: str | None = None
    ) -> list[ExperimentRecord]:
        """The experiments with these ids, in the order asked; with ``tenant_id``, another
        tenant's experiments count as unknown.

        Raises:
            ExperimentNotFound: any id is unknown (the message names every unknown one).
        """
        query = select(Experiment).where(Experiment.experiment_id.in_(experiment_ids))
        if tenant_id is not None:
            query = query.where(Experiment.tenant_id == tenant_id)
        async with self._database.transaction() as session:
            rows = (await session.scalars(query)).all()
            records = {r.experiment_id: r for r in await _records(session, rows, True)}
        missing = [i for i in experiment_ids if i not in records]
        if missing:
            raise ExperimentNotFound(", ".join(missing))
        return [records[i] for i in experiment_ids]

    async def get(self, experiment_id: str, tenant_id: str | None = None) -> ExperimentRecord:
        """One experiment with every parameter and its final metrics (see ``get_many``).

        Raises:
            ExperimentNotFound: no experiment has that id.
        """
        [record] = await self.get_many([experiment_id], tenant_id)
        return record

    async def metric_history(self, experiment_id: str, name: str) -> list[MetricPoint]:
        """One metric's points of one experiment, ordered by step."""
        return (await self.series([experiment_id], name)).points[experiment_id]

    async def series(
        self,
        experiment_ids: Sequence[str],
        name: str | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> SeriesRead:
        """Metric points per experiment, ordered by name then step (optionally one metric
        and a step range), ``MAX_SERIES_POINTS`` in all: shared out so that no experiment
        is cut short while another gets more than its equal share; those cut short are
        named in ``truncated``."""
        conditions: list[ColumnElement[bool]] = [ExperimentMetric.experiment_id.in_(experiment_ids)]
        if name is not None:
            conditions.append(ExperimentMetric.name == name)
        if min_step is not None:
            conditions.append(ExperimentMetric.step >= min_step)
        if max_step is not None:
            conditions.append(ExperimentMetric.step <= max_step)
        counting = (
            select(ExperimentMetric.experiment_id, func.count())
            .where(*conditions)
            .group_by(ExperimentMetric.experiment_id)
        )
        points: dict[str, list[MetricPoint]] = {i: [] for i in experiment_ids}
        async with self._database.transaction() as session:
            counts = {key: int(n) for key, n in (await session.execute(counting)).all()}
            shares = fair_shares(counts, MAX_SERIES_POINTS)
            for experiment_id, share in shares.items():
                query = (
                    select(ExperimentMetric)
                    .where(*conditions, ExperimentMetric.experiment_id == experiment_id)
                    .order_by(ExperimentMetric.name, ExperimentMetric.step, ExperimentMetric.id)
                    .limit(share)
                )
                points[experiment_id] = [
                    MetricPoint(row.name, row.value, row.step)
                    for row in (await session.scalars(query)).all()
                ]
        truncated = tuple(key for key in experiment_ids if shares.get(key, 0) < counts.get(key, 0))
        return SeriesRead(points, truncated)

    async def series_pages(
        self, experiment_ids: Sequence[str], page_points: int = SERIES_PAGE_POINTS
    ) -> AsyncIterator[list[tuple[str, MetricPoint]]]:
        """Every metric point of the experiments as (experiment id, point), ordered by
        experiment, name and step, in pages of at most ``page_points`` points, each read
        in a transaction of its own after the last one's key (no cap on the total)."""
        order = (
            ExperimentMetric.experiment_id,
            ExperimentMetric.name,
            ExperimentMetric.step,
            ExperimentMetric.id,
        )
        query = (
            select(ExperimentMetric)
            .where(ExperimentMetric.experiment_id.in_(experiment_ids))
            .order_by(*order)
            .limit(page_points)
        )
        after: tuple[str, str, int, int] | None = None
        while True:
            page_query = query if after is None else query.where(tuple_(*order) > tuple_(*after))
            async with self._database.transaction() as session:
                rows = (await session.scalars(page_query)).all()
            if not rows:
                return
            yield [(r.experiment_id, MetricPoint(r.name, r.value, r.step)) for r in rows]
            if len(rows) < page_points:
                return
            last = rows[-1]
            after = (last.experiment_id, last.name, last.step, last.id)


def _conditions(filters: ExperimentFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.tenant_id is not None:
        conditions.append(Experiment.tenant_id == filters.tenant_id)
    if filters.job_id is not None:
        conditions.append(Experiment.job_id == filters.job_id)
    if filters.model_name is not None:
        conditions.append(Experiment.model_name == filters.model_name)
    if filters.status is not None:
        conditions.append(Experiment.status == filters.status.value)
    if filters.created_after is not None:
        conditions.append(Experiment.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(Experiment.created_at < filters.created_before)
    return conditions


async def _records(
    session: AsyncSession, rows: Sequence[Experiment], with_params: bool
) -> list[ExperimentRecord]:
    ids = [r.experiment_id for r in rows]
    finals: dict[str, dict[str, float]] = {i: {} for i in ids}
    params: dict[str, dict[str, Any]] = {i: {} for i in ids}
    if ids:
        inner = final_values().subquery()
        query = select(inner).where(inner.c.experiment_id.in_(ids))
        for experiment_id, name, value in (await session.execute(query)).all():
            finals[experiment_id][name] = value
    if ids and with_params:
        query = select(ExperimentParam).where(ExperimentParam.experiment_id.in_(ids))
        for p in (await session.scalars(query)).all():
            params[p.experiment_id][p.name] = decode_param(p.value, p.value_type)
    return [_record(r, params[r.experiment_id], finals[r.experiment_id]) for r in rows]


def _record(
    row: Experiment, params: Mapping[str, Any], metrics: Mapping[str, float]
) -> ExperimentRecord:
    return ExperimentRecord(
        experiment_id=row.experiment_id,
        job_id=row.job_id,
        tenant_id=row.tenant_id,
        model_name=row.model_name,
        name=row.name,
        status=ExperimentStatus(row.status),
        model_id=row.model_id,
        created_at=row.created_at,
        completed_at=row.completed_at,
        params=dict(sorted(params.items())),
        metrics=dict(sorted(metrics.items())),
    )
