"""The retention policy (the seed's): how long finished jobs and log lines are kept.

Completed jobs go after 90 days, failed ones after 30 and log lines after 7; experiments
and their metrics are kept indefinitely (a purged job's experiments lose only their
``job_id``). A job whose model is still registered is never purged. Feature-set versions
that no unfinished job and no registered model references go an hour after they were
replaced (``feature_versions_in_use``; the feature store deletes them). Finished batch
forecasts go after 30 days (their files with them: ``PurgeReport.forecasts``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import delete, exists, or_, select

from db.database import Database
from db.models import BatchForecast, IdempotencyKey, RegisteredModel, TrainingJob, TrainingLog
from db.records import ExpiredForecast, PurgeReport
from domain.forecasts import ForecastStatus
from domain.jobs import JobStatus

#: Ids per ``DELETE ... IN``: a bound parameter each, well under PostgreSQL's 32,767.
IDS_PER_STATEMENT = 5_000


class RetentionPolicy(BaseSettings):
    """Periods in days (``TRAINING_RETENTION_...``)."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_RETENTION_", extra="ignore")

    completed_jobs_days: float = Field(90, gt=0)
    failed_jobs_days: float = Field(30, gt=0)
    cancelled_jobs_days: float = Field(30, gt=0)
    logs_days: float = Field(7, gt=0)
    idempotency_keys_hours: float = Field(24, gt=0)
    feature_versions_grace_hours: float = Field(
        1,
        ge=0,
        description="A feature-set version nothing references is removed this long after "
        "a newer one replaced it (a reader that has just looked it up has that long).",
    )
    forecasts_days: float = Field(
        30, gt=0, description="Finished batch forecasts (rows and files) are kept this long."
    )
    interval_hours: float = Field(24, gt=0, description="How often the orchestrator purges.")

    def job_cutoffs(self, now: datetime) -> dict[JobStatus, datetime]:
        """Per finished status, the completion time before which a job is purged."""
        return {
            JobStatus.COMPLETED: now - timedelta(days=self.completed_jobs_days),
            JobStatus.FAILED: now - timedelta(days=self.failed_jobs_days),
            JobStatus.CANCELLED: now - timedelta(days=self.cancelled_jobs_days),
        }


async def purge(database: Database, policy: RetentionPolicy, now: datetime) -> PurgeReport:
    """Delete what ``policy`` says is expired at ``now``, in one transaction."""
    has_model = exists().where(RegisteredModel.job_id == TrainingJob.job_id)
    expired = [
        (TrainingJob.status == status.value) & (TrainingJob.completed_at < cutoff)
        for status, cutoff in policy.job_cutoffs(now).items()
    ]
    doomed = select(TrainingJob.job_id).where(~has_model).where(or_(*expired))
    log_cutoff = now - timedelta(days=policy.logs_days)
    async with database.transaction() as session:
        job_ids = list((await session.scalars(doomed)).all())
        old_logs = await session.execute(
            delete(TrainingLog).where(TrainingLog.timestamp < log_cutoff)
        )
        logs = int(getattr(old_logs, "rowcount", 0))
        for some in _chunks(job_ids):
            of_jobs = await session.execute(delete(TrainingLog).where(TrainingLog.job_id.in_(some)))
            logs += int(getattr(of_jobs, "rowcount", 0))
            await session.execute(delete(TrainingJob).where(TrainingJob.job_id.in_(some)))
        key_cutoff = now - timedelta(hours=policy.idempotency_keys_hours)
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < key_cutoff))
        finished = [ForecastStatus.COMPLETED.value, ForecastStatus.FAILED.value]
        forecast_cutoff = now - timedelta(days=policy.forecasts_days)
        old_forecasts = (
            select(BatchForecast.tenant_id, BatchForecast.forecast_id)
            .where(BatchForecast.status.in_(finished))
            .where(BatchForecast.finished_at < forecast_cutoff)
        )
        forecasts = tuple(ExpiredForecast(*row) for row in await session.execute(old_forecasts))
        for some in _chunks([forecast.forecast_id for forecast in forecasts]):
            await session.execute(delete(BatchForecast).where(BatchForecast.forecast_id.in_(some)))
    return PurgeReport(jobs=len(job_ids), logs=logs, job_ids=tuple(job_ids), forecasts=forecasts)


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        yield ids[start : start + IDS_PER_STATEMENT]


async def feature_versions_in_use(database: Database) -> set[str]:
    """The feature-set versions a queued or running job read, or a registered model was
    trained on: what retention keeps."""
    unfinished = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
    read = select(TrainingJob.feature_set_version).where(TrainingJob.status.in_(unfinished))
    trained = select(RegisteredModel.feature_set_version)
    async with database.transaction() as session:
        versions = (await session.scalars(read.union(trained))).all()
    return {v for v in versions if v is not None}
