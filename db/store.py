"""The storage contract and its SQLAlchemy implementation (SQLite and PostgreSQL).

Every method is a coroutine and a transaction of its own. Records going in and out are
the plain dataclasses of ``db.records``; ORM rows never leave this module.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from db.database import Database
from db.experiments import ExperimentCatalog, encode_param
from db.models import (
    Experiment,
    ExperimentMetric,
    ExperimentParam,
    IdempotencyKey,
    RegisteredModel,
    TrainingJob,
    TrainingLog,
)
from db.paging import paginate
from db.records import (
    ExperimentRecord,
    IdempotencyClaim,
    IdempotencyRecord,
    JobFilters,
    JobRecord,
    LogRecord,
    MetricPoint,
    ModelRecord,
    NewExperiment,
    NewJob,
    NewLog,
    NewModel,
    Page,
)
from db.registry import ModelRegistry, model_record, promote_if_better
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


class TrainingStore(ABC):
    """What the service needs from persistence. Backends are chosen by URL."""

    @abstractmethod
    async def create_job(
        self,
        job: NewJob,
        logs: Sequence[NewLog] = (),
        idempotency: IdempotencyClaim | None = None,
    ) -> JobRecord:
        """Insert a queued job (and ``logs`` about it, and its idempotency key, replacing
        an expired one); committed when this returns."""

    @abstractmethod
    async def find_idempotent(
        self, tenant_id: str, key: str, since: datetime
    ) -> IdempotencyRecord | None:
        """The job an idempotency key created at or after ``since``, if any."""

    @abstractmethod
    async def get_job(self, job_id: str) -> JobRecord:
        """Return one job.

        Raises:
            JobNotFound: no job has that id.
        """

    @abstractmethod
    async def list_jobs(self, filters: JobFilters, page: int, page_size: int) -> Page[JobRecord]:
        """Return one page (1-based) of matching jobs, newest first, and the match count."""

    @abstractmethod
    async def jobs_in_status(self, *statuses: JobStatus) -> list[JobRecord]:
        """Jobs in any of ``statuses``, highest priority first, then oldest first."""

    @abstractmethod
    async def count_by_status(self, tenant_id: str | None = None) -> dict[JobStatus, int]:
        """How many jobs (of one tenant, if given) are in each status, zeros included."""

    @abstractmethod
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

    @abstractmethod
    async def cancel_queued(self, tenant_id: str, log: Callable[[str], NewLog]) -> list[JobRecord]:
        """Cancel every queued job of a tenant in one transaction, with ``log(job_id)`` as
        each one's log line; the cancelled jobs, oldest first."""

    @abstractmethod
    async def typical_duration(self, feature_set: str, sample: int = 20) -> float | None:
        """Mean run time in seconds of the last ``sample`` completed jobs on a feature set."""

    @abstractmethod
    async def update_progress(
        self,
        job_id: str,
        progress: float,
        stage: str,
        metrics: Mapping[str, Any] | None = None,
        logs: Sequence[NewLog] = (),
    ) -> bool:
        """Record progress of a running job and append ``logs``, in one transaction.

        Returns whether the job was running; progress of any other job is left alone
        (its log lines are still kept).
        """

    @abstractmethod
    async def append_logs(self, entries: Sequence[NewLog]) -> None:
        """Insert log lines in one batch."""

    @abstractmethod
    async def tail_logs(self, job_id: str, tail: int) -> list[LogRecord]:
        """The job's last ``tail`` log lines, oldest first.

        Raises:
            JobNotFound: no job has that id.
        """

    async def create_experiment(
        self,
        job_id: str,
        name: str,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[MetricPoint] = (),
        status: ExperimentStatus = ExperimentStatus.RUNNING,
    ) -> str:
        """Open one experiment for a job (see ``create_experiments``); returns its id."""
        [experiment_id] = await self.create_experiments(
            job_id, [NewExperiment(name, params, metrics, status)]
        )
        return experiment_id

    @abstractmethod
    async def create_experiments(
        self, job_id: str, experiments: Sequence[NewExperiment]
    ) -> list[str]:
        """Open experiments for a job with their parameters and first metric points, in
        one transaction.

        Returns:
            The new experiments' ids, in order.

        Raises:
            JobNotFound: no job has that id.
        """

    @abstractmethod
    async def log_metrics(self, experiment_id: str, points: Sequence[MetricPoint]) -> None:
        """Append metric points to an experiment in one batch."""

    @abstractmethod
    async def experiments_of_job(self, job_id: str) -> list[ExperimentRecord]:
        """A job's experiments with their parameters, oldest first."""

    @abstractmethod
    async def metric_history(self, experiment_id: str, name: str) -> list[MetricPoint]:
        """One metric's points of one experiment, ordered by step."""

    @abstractmethod
    async def get_model(self, model_id: str) -> ModelRecord:
        """Return one registered model.

        Raises:
            ModelNotFound: no model has that id.
        """

    @abstractmethod
    async def models_of_job(self, job_id: str) -> list[ModelRecord]:
        """The models a job registered (zero or one)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class SqlAlchemyStore(TrainingStore):
    """The store on SQLAlchemy 2.0 async: SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._transaction = database.transaction
        self._experiments = ExperimentCatalog(database)
        self._registry = ModelRegistry(database)

    @classmethod
    def from_url(cls, url: str) -> SqlAlchemyStore:
        return cls(Database.from_url(url))

    @property
    def engine(self) -> AsyncEngine:
        return self.database.engine

    async def create_job(
        self,
        job: NewJob,
        logs: Sequence[NewLog] = (),
        idempotency: IdempotencyClaim | None = None,
    ) -> JobRecord:
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
            if logs:
                await session.execute(insert(TrainingLog), _log_rows(logs))
            if idempotency is not None:
                await session.execute(
                    delete(IdempotencyKey).where(
                        IdempotencyKey.tenant_id == job.tenant_id,
                        IdempotencyKey.key == idempotency.key,
                    )
                )
                session.add(
                    IdempotencyKey(
                        tenant_id=job.tenant_id,
                        key=idempotency.key,
                        request_hash=idempotency.request_hash,
                        job_id=job.job_id,
                        created_at=now,
                    )
                )
        return _job(row)

    async def find_idempotent(
        self, tenant_id: str, key: str, since: datetime
    ) -> IdempotencyRecord | None:
        async with self._transaction() as session:
            row = await session.get(IdempotencyKey, (tenant_id, key))
            if row is None or row.created_at < since:
                return None
            return IdempotencyRecord(row.key, row.request_hash, row.job_id, row.created_at)

    async def get_job(self, job_id: str) -> JobRecord:
        async with self._transaction() as session:
            row = await session.get(TrainingJob, job_id)
            if row is None:
                raise JobNotFound(job_id)
            return _job(row)

    async def list_jobs(self, filters: JobFilters, page: int, page_size: int) -> Page[JobRecord]:
        conditions = []
        if filters.tenant_id is not None:
            conditions.append(TrainingJob.tenant_id == filters.tenant_id)
        if filters.model_type is not None:
            conditions.append(TrainingJob.model_type == filters.model_type.value)
        if filters.model_name is not None:
            conditions.append(TrainingJob.model_name == filters.model_name)
        if filters.status is not None:
            conditions.append(TrainingJob.status == filters.status.value)
        query = (
            select(TrainingJob)
            .where(*conditions)
            .order_by(TrainingJob.created_at.desc(), TrainingJob.job_id)
        )
        async with self._transaction() as session:
            found = await paginate(session, query, page, page_size)
        return found.with_items([_job(r) for r in found.items])

    async def jobs_in_status(self, *statuses: JobStatus) -> list[JobRecord]:
        query = (
            select(TrainingJob)
            .where(TrainingJob.status.in_([s.value for s in statuses]))
            .order_by(TrainingJob.priority.desc(), TrainingJob.created_at, TrainingJob.job_id)
        )
        async with self._transaction() as session:
            return [_job(r) for r in (await session.scalars(query)).all()]

    async def count_by_status(self, tenant_id: str | None = None) -> dict[JobStatus, int]:
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
        logs: Sequence[NewLog],
    ) -> JobRecord:
        async with self._transaction() as session:
            row = await session.get(TrainingJob, job_id, with_for_update=True)
            if row is None:
                raise JobNotFound(job_id)
            await self._apply(session, row, event, error_message, metrics, model)
            if logs:
                await session.execute(insert(TrainingLog), _log_rows(logs))
            return _job(row)

    async def cancel_queued(self, tenant_id: str, log: Callable[[str], NewLog]) -> list[JobRecord]:
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
                await self._apply(session, row, JobEvent.CANCEL, None, None, None)
            if rows:
                lines = [log(row.job_id) for row in rows]
                await session.execute(insert(TrainingLog), _log_rows(lines))
            return [_job(row) for row in rows]

    async def _apply(
        self,
        session: AsyncSession,
        row: TrainingJob,
        event: JobEvent,
        error_message: str | None,
        metrics: Mapping[str, Any] | None,
        model: NewModel | None,
    ) -> None:
        """What ``event`` does to a locked job row (see ``transition``)."""
        apply_event(row, event, utcnow())
        if error_message is not None:
            row.error_message = error_message
        if metrics is not None:
            row.metrics = dict(metrics)
        if event in _EXPERIMENT_OUTCOME:
            await self._close_experiments(session, row, _EXPERIMENT_OUTCOME[event], model)

    async def _close_experiments(
        self,
        session: AsyncSession,
        job: TrainingJob,
        outcome: ExperimentStatus,
        model: NewModel | None,
    ) -> None:
        running = (
            await session.scalars(
                select(Experiment)
                .where(Experiment.job_id == job.job_id)
                .where(Experiment.status == ExperimentStatus.RUNNING.value)
                .order_by(Experiment.created_at)
            )
        ).all()
        for experiment in running:
            experiment.status = outcome.value
            experiment.completed_at = job.updated_at
        if model is None:
            return
        experiment_id = running[-1].experiment_id if running else None
        session.add(
            RegisteredModel(
                model_id=model.model_id,
                tenant_id=model.tenant_id,
                model_name=model.model_name,
                model_type=model.model_type.value,
                version=model.version,
                job_id=job.job_id,
                experiment_id=experiment_id,
                feature_set=model.feature_set,
                artifact_uri=model.artifact_uri,
                metrics=dict(model.metrics),
                params=dict(model.params),
                features=list(model.features),
                feature_importance=(
                    dict(model.feature_importance) if model.feature_importance else None
                ),
                created_at=job.updated_at,
            )
        )
        job.model_id = model.model_id
        if running:
            running[-1].model_id = model.model_id
        if model.promote:
            await session.flush()
            message = await promote_if_better(session, model)
            session.add(
                TrainingLog(
                    job_id=job.job_id,
                    timestamp=job.updated_at,
                    level=LogLevel.INFO.value,
                    stage="register",
                    message=message,
                )
            )

    async def typical_duration(self, feature_set: str, sample: int = 20) -> float | None:
        query = (
            select(TrainingJob.started_at, TrainingJob.completed_at)
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
    ) -> bool:
        values: dict[str, Any] = {"progress": progress, "stage": stage, "updated_at": utcnow()}
        if metrics is not None:
            values["metrics"] = dict(metrics)
        statement = (
            update(TrainingJob)
            .where(TrainingJob.job_id == job_id)
            .where(TrainingJob.status == JobStatus.RUNNING.value)
            .values(**values)
        )
        async with self._transaction() as session:
            result = await session.execute(statement)
            if logs:
                await session.execute(insert(TrainingLog), _log_rows(logs))
            return bool(getattr(result, "rowcount", 0))

    async def append_logs(self, entries: Sequence[NewLog]) -> None:
        if not entries:
            return
        async with self._transaction() as session:
            await session.execute(insert(TrainingLog), _log_rows(entries))

    async def tail_logs(self, job_id: str, tail: int) -> list[LogRecord]:
        query = (
            select(TrainingLog)
            .where(TrainingLog.job_id == job_id)
            .order_by(TrainingLog.id.desc())
            .limit(tail)
        )
        async with self._transaction() as session:
            if await session.get(TrainingJob, job_id) is None:
                raise JobNotFound(job_id)
            rows = (await session.scalars(query)).all()
        return [_log(r) for r in reversed(rows)]

    async def create_experiments(
        self, job_id: str, experiments: Sequence[NewExperiment]
    ) -> list[str]:
        ids = [str(uuid.uuid4()) for _ in experiments]
        now = utcnow()
        async with self._transaction() as session:
            job = await session.get(TrainingJob, job_id)
            if job is None:
                raise JobNotFound(job_id)
            if not experiments:
                return []
            rows = [
                {
                    "experiment_id": experiment_id,
                    "job_id": job_id,
                    "tenant_id": job.tenant_id,
                    "model_name": job.model_name,
                    "name": new.name,
                    "status": new.status.value,
                    "created_at": now,
                    "completed_at": None if new.status is ExperimentStatus.RUNNING else now,
                }
                for experiment_id, new in zip(ids, experiments, strict=True)
            ]
            await session.execute(insert(Experiment), rows)
            params = [
                _param_row(experiment_id, name, value)
                for experiment_id, new in zip(ids, experiments, strict=True)
                for name, value in (new.params or {}).items()
            ]
            if params:
                await session.execute(insert(ExperimentParam), params)
            metrics = [
                row
                for experiment_id, new in zip(ids, experiments, strict=True)
                for row in _metric_rows(experiment_id, new.metrics)
            ]
            if metrics:
                await session.execute(insert(ExperimentMetric), metrics)
        return ids

    async def log_metrics(self, experiment_id: str, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        async with self._transaction() as session:
            await session.execute(insert(ExperimentMetric), _metric_rows(experiment_id, points))

    async def experiments_of_job(self, job_id: str) -> list[ExperimentRecord]:
        return await self._experiments.of_job(job_id)

    async def metric_history(self, experiment_id: str, name: str) -> list[MetricPoint]:
        return (await self._experiments.series([experiment_id], name))[experiment_id]

    async def get_model(self, model_id: str) -> ModelRecord:
        return await self._registry.get(model_id)

    async def models_of_job(self, job_id: str) -> list[ModelRecord]:
        query = select(RegisteredModel).where(RegisteredModel.job_id == job_id)
        async with self._transaction() as session:
            return [model_record(r) for r in (await session.scalars(query)).all()]

    async def close(self) -> None:
        await self.database.close()


def _log_rows(entries: Sequence[NewLog]) -> list[dict[str, Any]]:
    return [
        {
            "job_id": e.job_id,
            "timestamp": e.timestamp,
            "level": e.level.value,
            "stage": e.stage,
            "message": e.message,
            "extra": dict(e.extra) if e.extra is not None else None,
        }
        for e in entries
    ]


def _param_row(experiment_id: str, name: str, value: Any) -> dict[str, Any]:
    text, value_type = encode_param(value)
    return {"experiment_id": experiment_id, "name": name, "value": text, "value_type": value_type}


def _metric_rows(experiment_id: str, points: Sequence[MetricPoint]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "experiment_id": experiment_id,
            "name": p.name,
            "value": p.value,
            "step": p.step,
            "recorded_at": now,
        }
        for p in points
    ]


def _job(row: TrainingJob) -> JobRecord:
    return JobRecord(
        job_id=row.job_id,
        tenant_id=row.tenant_id,
        model_type=ModelType(row.model_type),
        model_name=row.model_name,
        feature_set=row.feature_set,
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


def _log(row: TrainingLog) -> LogRecord:
    return LogRecord(
        id=row.id,
        job_id=row.job_id,
        timestamp=row.timestamp,
        level=LogLevel(row.level),
        stage=row.stage,
        message=row.message,
        extra=row.extra,
    )
