"""A fake of ``Intake.submit`` for the schedulers' tests (one piece, unit): it submits once
per idempotency key, into a real job store, or fails as told."""

from __future__ import annotations

from datetime import UTC, datetime

from actors.scheduler import ScheduledFire
from actors.submission import JobSubmission
from db.jobs import JobStore
from db.records import JobRecord
from domain.errors import TrainingError
from tests.db.factories import new_job

#: When the schedule or policy was made, and its first daily fire (02:00 UTC).
CREATED = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
FIRST_FIRE = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


class Intake:
    """Submits as ``Intake.submit`` does, once per key, or fails as told."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.failure: TrainingError | None = None
        self.jobs: dict[str, JobRecord] = {}

    async def submit(
        self, submission: JobSubmission, key: str, fire: ScheduledFire | None = None
    ) -> tuple[JobRecord, bool]:
        if self.failure is not None:
            raise self.failure
        if key in self.jobs:
            return self.jobs[key], False
        self.jobs[key] = await self.store.create_job(new_job())
        return self.jobs[key], True
