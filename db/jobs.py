"""Training jobs: their rows and every change to them, and what a running job writes.

Every method is a coroutine and a transaction of its own, composed of the session-level
writes of the other concepts: a job's log lines (``db.logs``), its idempotency claim
(``db.idempotency``), its experiments (``db.experiments``) and its model (``db.registry``)
are written in the transaction of the change they belong to. Records going in and out are
the plain dataclasses of ``db.records``; ORM rows never leave ``db``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from db.database import Database
from db.experiment_rows import close_running
from db.idempotency import add_claim, find_claim
from db.logs import add_logs, tail_logs
from db.models import TrainingJob
from db.paging import paginate
from db.promotions import decide
from db.records import (
    IdempotencyClaim,
    IdempotencyRecord,
    JobFilters,
    JobRecord,
    LogRecord,
    NewJob,
    NewLog,
    NewModel,
    Page,
)
from db.registry import add_model
from domain.clock import utcnow
from domain.errors import JobNotFound
from domain.events import JobEvent, apply_event
from domain.jobs import ExperimentStatus, JobStatus, LogLevel, ModelType

#: Tries of a transition that keeps losing races to concurrent ones.
TRANSITION_ATTEMPTS = 3

_EXPERIMENT_OUTCOME = {
    JobEvent.COMPLETE: ExperimentStatus.COMPLETED,
    JobEvent.FAIL: ExperimentStatus.FAILED,
    JobEvent.CANCEL: ExperimentStatus.CANCELLED,
    JobEvent.REQUEUE: ExperimentStatus.FAILED,
}


class JobStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._transaction = database.transaction

    async def create_job(
        self,
        job: NewJob,
        logs: Sequence[NewLog] = (),
        idempotency: IdempotencyClaim | None = None,
    ) -> JobRecord:
        """Insert a queued job (and ``logs`` about it, and its idempotency key, replacing
        an expired one); committed when this returns."""
        now = utcnow()
        row = TrainingJob(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            model_type=job.model_type.value,
            model_name=job.model_name,
            feature_set=job.feature_set,
            status=JobStatus.QUEUED.value,
            priority=job.priority,
            progress=0.0,
            config=dict(job.config),
            retry_of=job.retry_of,
            schedule_cron=job.schedule_cron,
            schedule_id=job.schedule_id,
            fire_time=job.fire_time,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        async with self._transaction() as session:
            session.add(row)
            await session.flush()
            await add_logs(session, logs)
            if idempotency is not None:
                await add_claim(session, job.tenant_id, idempotency, job.job_id, now)
        return _job(row)

    async def find_idempotent(
        self, tenant_id: str, key: str, since: datetime
    ) -> IdempotencyRecord | None:
        """The job an idempotency key created at or after ``since``, if any."""
        async with self._transaction() as session:
            return await find_claim(session, tenant_id, key, since)

    async def get_job(self, job_id: str) -> JobRecord:
        """Raises: JobNotFound: no job has that id."""
        async with self._transaction() as session:
            return _job(await _row(session, job_id))

    async def list_jobs(self, filters: JobFilters, page: int, page_size: int) -> Page[JobRecord]:
        """One page (1-based) of matching jobs, newest first, and the match count."""
        query = (
            select(TrainingJob)
            .where(*_conditions(filters))
            .order_by(TrainingJob.created_at.desc(), TrainingJob.job_id)
        )
        async with self._transaction() as session:
            found = await paginate(session, query, page, page_size)
        return found.with_items([_job(r) for r in found.items])

    async def jobs_in_status(self, *statuses: JobStatus) -> list[JobRecord]:
        """Jobs in any of ``statuses``, highest priority first, then oldest first."""
        query = (
            select(TrainingJob)
            .where(TrainingJob.status.in_([s.value for s in statuses]))
            .order_by(TrainingJob.priority.desc(), TrainingJob.created_at, TrainingJob.job_id)
        )
        async with self._transaction() as session:
            return [_job(r) for r in (await session.scalars(query)).all()]

    async def count_by_status(self, tenant_id: str | None = None) -> dict[JobStatus, int]:
        """How many jobs (of one tenant, if given) are in each status, zeros included."""
        query = select(TrainingJob.status, func.count()).group_by(TrainingJob.status)
        if tenant_id is not None:
            query = query.where(TrainingJob.tenant_id == tenant_id)
        counts = dict.fromkeys(JobStatus, 0)
        async with self._transaction() as session:
            for status, count in (await session.execute(query)).all():
                counts[JobStatus(status)] = count
        return counts

    async def transition(
        self,
        job_id: str,
        event: JobEvent,
        *,
        error_message: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        model: NewModel | None = None,
        logs: Sequence[NewLog] = (),
    ) -> JobRecord:
        """Apply ``event`` to the job under a row lock and return the updated job.

        START counts an attempt and stamps ``started_at``; finishing events stamp
        ``completed_at`` and close the job's running experiments. A ``model`` (with
        COMPLETE only) is registered in the same transaction, so a completed job and
        its model row exist together or not at all; so are ``logs``, the lines that
        tell of the change.

        Raises:
            JobNotFound: no job has that id.
            IllegalTransition: the job's status does not allow ``event``.
        """
        if model is not None and event is not JobEvent.COMPLETE:
            raise ValueError("a model is registered only when its job completes")
        for _ in range(TRANSITION_ATTEMPTS - 1):
            try:
                return await self._transition(job_id, event, error_message, metrics, model, logs)
            except StaleDataError:
                continue  # another transition won the race; decide again on its result
        return await self._transition(job_id, event, error_message, metrics, model, logs)

    async def _transition(
        self,
        job_id: str,
        event: JobEvent,
        error_message: str | None,
        metrics: Mapping[str, Any] | None,
        model: NewModel | None,
        lines: Sequence[NewLog],
    ) -> JobRecord:
        async with self._transaction() as session:
            row = await _row(session, job_id, lock=True)
            await _apply(session, row, event, error_message, metrics, model)
            await add_logs(session, lines)
            return _job(row)

    async def cancel_queued(self, tenant_id: str, log: Callable[[str], NewLog]) -> list[JobRecord]:
        """Cancel every queued job of a tenant in one transaction, with ``log(job_id)`` as
        each one's log line; the cancelled jobs, oldest first."""
        for _ in range(TRANSITION_ATTEMPTS - 1):
            try:
                return await self._cancel_queued(tenant_id, log)
            except StaleDataError:
                continue  # a job started meanwhile; look again
        return await self._cancel_queued(tenant_id, log)

    async def _cancel_queued(self, tenant_id: str, log: Callable[[str], NewLog]) -> list[JobRecord]:
        query = (
            select(TrainingJob)
            .where(TrainingJob.tenant_id == tenant_id)
            .where(TrainingJob.status == JobStatus.QUEUED.value)
            .order_by(TrainingJob.created_at, TrainingJob.job_id)
            .with_for_update()
        )
        async with self._transaction() as session:
            rows = (await session.scalars(query)).all()
            for row in rows:
                await _apply(session, row, JobEvent.CANCEL, None, None, None)
            await add_logs(session, [log(row.job_id) for row in rows])
            return [_job(row) for row in rows]

    async def typical_duration(
        self, tenant_id: str, feature_set: str, sample: int = 20
    ) -> float | None:
        """Mean run time in seconds of the tenant's last ``sample`` completed jobs on a
        feature set (another tenant's are not its to know)."""
        query = (
            select(TrainingJob.started_at, TrainingJob.completed_at)
            .where(TrainingJob.tenant_id == tenant_id)
            .where(TrainingJob.feature_set == feature_set)
            .where(TrainingJob.status == JobStatus.COMPLETED.value)
            .order_by(TrainingJob.completed_at.desc())
            .limit(sample)
        )
        async with self._transaction() as session:
            rows = (await session.execute(query)).all()
        durations = [(end - start).total_seconds() for start, end in rows if start and end]
        return sum(durations) / len(durations) if durations else None

    async def update_progress(
        self,
        job_id: str,
        progress: float,
        stage: str,
        metrics: Mapping[str, Any] | None = None,
        logs: Sequence[NewLog] = (),
        feature_set_version: str | None = None,
    ) -> bool:
        """Record progress of a running job (and the feature-set version it read, when
        given) and append ``logs``, in one transaction.

        Returns whether the job was running; progress of any other job is left alone
        (its log lines are still kept).
        """
        values: dict[str, Any] = {"progress": progress, "stage": stage, "updated_at": utcnow()}
        if metrics is not None:
            values["metrics"] = dict(metrics)
        if feature_set_version is not None:
            values["feature_set_version"] = feature_set_version
        statement = (
            update(TrainingJob)
            .where(TrainingJob.job_id == job_id)
            .where(TrainingJob.status == JobStatus.RUNNING.value)
            .values(**values)
        )
        async with self._transaction() as session:
            result = await session.execute(statement)
            await add_logs(session, logs)
            return bool(getattr(result, "rowcount", 0))

    async def append_logs(self, logs: Sequence[NewLog]) -> None:
        """Add log lines to their jobs, whatever their status, in one transaction."""
        async with self._transaction() as session:
            await add_logs(session, logs)

    async def tail_logs(self, job_id: str, tail: int) -> list[LogRecord]:
        """The job's last ``tail`` log lines, oldest first.

        Raises:
            JobNotFound: no job has that id.
        """
        async with self._transaction() as session:
            return await tail_logs(session, job_id, tail)


async def _apply(
    session: AsyncSession,
    row: TrainingJob,
    event: JobEvent,
    error_message: str | None,
    metrics: Mapping[str, Any] | None,
    model: NewModel | None,
) -> None:
    """What ``event`` does to a locked job row (see ``JobStore.transition``): the state
    change, then its running experiments closed and its model registered (and, if the
    job asks, promoted or not on its comparison with the champion: the decision is
    stored, with a log line saying so)."""
    apply_event(row, event, utcnow())
    if error_message is not None:
        row.error_message = error_message
    if metrics is not None:
        row.metrics = dict(metrics)
    if event not in _EXPERIMENT_OUTCOME:
        return
    closed = await close_running(session, row.job_id, _EXPERIMENT_OUTCOME[event], row.updated_at)
    if model is None:
        return
    await add_model(session, row, model, closed[-1] if closed else None)
    if model.promote:
        await session.flush()
        message = await decide(session, row, model)
        await add_logs(
            session, [NewLog(row.job_id, LogLevel.INFO, message, row.updated_at, "register")]
        )


async def _row(session: AsyncSession, job_id: str, *, lock: bool = False) -> TrainingJob:
    """The job's row (locked for update with ``lock``).

    Raises:
        JobNotFound: no job has that id.
    """
    row = await session.get(TrainingJob, job_id, with_for_update=True if lock else None)
    if row is None:
        raise JobNotFound(job_id)
    return row


def _conditions(filters: JobFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.tenant_id is not None:
        conditions.append(TrainingJob.tenant_id == filters.tenant_id)
    if filters.model_type is not None:
        conditions.append(TrainingJob.model_type == filters.model_type.value)
    if filters.model_name is not None:
        conditions.append(TrainingJob.model_name == filters.model_name)
    if filters.status is not None:
        conditions.append(TrainingJob.status == filters.status.value)
    return conditions


def _job(row: TrainingJob) -> JobRecord:
    return JobRecord(
        job_id=row.job_id,
        tenant_id=row.tenant_id,
        model_type=ModelType(row.model_type),
        model_name=row.model_name,
        feature_set=row.feature_set,
        feature_set_version=row.feature_set_version,
        status=JobStatus(row.status),
        priority=row.priority,
        progress=row.progress,
        stage=row.stage,
        config=row.config,
        metrics=row.metrics,
        model_id=row.model_id,
        error_message=row.error_message,
        retry_of=row.retry_of,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        schedule_id=row.schedule_id,
        fire_time=row.fire_time,
    )
