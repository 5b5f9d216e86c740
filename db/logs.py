"""Job log lines: written inside the transaction of whatever they tell about, read as a tail."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import TrainingJob, TrainingLog
from db.records import LogRecord, NewLog
from domain.errors import JobNotFound
from domain.jobs import LogLevel


async def add_logs(session: AsyncSession, entries: Sequence[NewLog]) -> None:
    """Insert log lines in one batch, in ``session``'s transaction."""
    if not entries:
        return
    rows = [
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
    await session.execute(insert(TrainingLog), rows)


async def tail_logs(session: AsyncSession, job_id: str, tail: int) -> list[LogRecord]:
    """The job's last ``tail`` log lines, oldest first.

    Raises:
        JobNotFound: no job has that id.
    """
    query = (
        select(TrainingLog)
        .where(TrainingLog.job_id == job_id)
        .order_by(TrainingLog.id.desc())
        .limit(tail)
    )
    if await session.get(TrainingJob, job_id) is None:
        raise JobNotFound(job_id)
    rows = (await session.scalars(query)).all()
    return [_record(r) for r in reversed(rows)]


def _record(row: TrainingLog) -> LogRecord:
    return LogRecord(
        id=row.id,
        job_id=row.job_id,
        timestamp=row.timestamp,
        level=LogLevel(row.level),
        stage=row.stage,
        message=row.message,
        extra=row.extra,
    )
