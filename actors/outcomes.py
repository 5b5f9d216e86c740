"""A job's outcome written: completed with its model registered, or failed with what
went wrong; each write retried through a database outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from actors.durable import durably
from actors.failures import describe_failure
from actors.recorder import service_log
from db.jobs import JobStore
from db.records import JobRecord, NewModel
from domain.errors import IllegalTransition
from domain.events import JobEvent
from pipeline.config import TrainingConfig
from pipeline.models.register import SavedModel
from pipeline.storage import Location

P = ParamSpec("P")
T = TypeVar("T")


class JobOutcomes:
    def __init__(
        self,
        store: JobStore,
        *,
        stage_attempts: int,
        outage_seconds: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._stage_attempts = stage_attempts
        self._outage_seconds = outage_seconds
        self._clock = clock

    async def complete(self, job: JobRecord, saved: SavedModel, metrics: dict[str, Any]) -> None:
        """Complete the job and register its model in one transaction; a model whose job
        has ended otherwise meanwhile (a cancel) is nobody's: its files are deleted."""
        model = NewModel(
            tenant_id=job.tenant_id,
            model_name=job.model_name,
            model_type=job.model_type,
            version=saved.version,
            feature_set=job.feature_set,
            artifact_uri=saved.artifact_uri,
            metrics=saved.metrics,
            params=saved.params,
            features=saved.features,
            promote=TrainingConfig.model_validate(job.config).promote_champion,
            feature_importance=saved.feature_importance,
            feature_set_version=saved.feature_set_version,
            comparison=saved.comparison,
        )
        try:
            await self._durably(
                self._store.transition,
                job.job_id,
                JobEvent.COMPLETE,
                metrics=metrics,
                model=model,
                logs=[
                    service_log(
                        job.job_id, f"completed; registered model {model.model_id}", self._clock()
                    )
                ],
            )
        except IllegalTransition:
            current = await self._durably(self._store.get_job, job.job_id)
            if current.model_id != model.model_id:  # not a retried commit: nobody owns it
                # In a thread: on an object store, deleting is many calls; the loop goes on.
                await asyncio.to_thread(Location(saved.artifact_uri).delete_dir)

    async def fail(self, job: JobRecord, exc: BaseException) -> None:
        """Fail the job with what ``exc`` says (a job that has ended already stays so)."""
        stage_attempts = self._stage_attempts
        message, lines = describe_failure(job.job_id, exc, stage_attempts, self._clock())
        with contextlib.suppress(IllegalTransition):
            await self._durably(
                self._store.transition,
                job.job_id,
                JobEvent.FAIL,
                error_message=message,
                logs=lines,
            )

    async def _durably(
        self, write: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await durably(self._outage_seconds, write, *args, **kwargs)
