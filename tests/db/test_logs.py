"""Job log lines on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

from db.jobs import JobStore
from db.records import NewLog
from domain.jobs import LogLevel
from tests.db.factories import append_logs, new_job


async def test_logs_tail_in_order(store: JobStore) -> None:
    job = await store.create_job(new_job())
    now = datetime.now(UTC)
    await append_logs(
        store.database,
        [NewLog(job.job_id, LogLevel.INFO, f"line {i}", now, stage="train") for i in range(10)],
    )
    tail = await store.tail_logs(job.job_id, 3)
    assert [line.message for line in tail] == ["line 7", "line 8", "line 9"]
    assert tail[0].level is LogLevel.INFO
    assert tail[0].stage == "train"
