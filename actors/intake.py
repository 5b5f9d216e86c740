"""The one way into the queue, for submits, retries and schedule fires.

Every new job takes the same path: its idempotency key is looked up, its config is checked
against the feature store (in a thread, and outside the lock: that can mean S3, and one
tenant's slow read must not hold up the others' submits), then under one lock the key is
looked up again, the tenant's ``max_queued`` admits it, and it is written as ``queued`` and
pushed. Nothing can slip in between the admission and the write, so concurrent submits and
retries never pass a limit, and a key admits one job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from actors.admission import Admission
from actors.queue import JobQueue
from actors.recorder import service_log
from actors.scheduler import ScheduledFire
from actors.submission import JobSubmission
from actors.validation import JobValidator
from db.jobs import JobStore
from db.records import IdempotencyClaim, JobRecord, NewJob
from db.registry import ModelRegistry
from domain.errors import Conflict, IdempotencyKeyReused, InvalidRequest
from domain.events import can_retry
from pipeline.config import TrainingConfig
from pipeline.resources import demand_of


class Intake:
    """Admits new jobs into the store and the queue."""

    def __init__(
        self,
        store: JobStore,
        validator: JobValidator,
        admission: Admission,
        queue: JobQueue,
        *,
        idempotency_window: timedelta,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None],
    ) -> None:
        self._store = store
        self._registry = ModelRegistry(store.database)
        self._validator = validator
        self._admission = admission
        self._queue = queue
        self._idempotency_window = idempotency_window
        self._clock = clock
        self._on_queued = on_queued
        self._lock = asyncio.Lock()

    async def submit(
        self,
        submission: JobSubmission,
        idempotency_key: str | None = None,
        schedule: ScheduledFire | None = None,
    ) -> tuple[JobRecord, bool]:
        """Queue a job, at most once per ``idempotency_key`` (kept for the idempotency
        window): a repeated key with the same submission returns the job it created, and
        ``False``.

        Raises:
            IdempotencyKeyReused: the key came with a different submission.
            InvalidRequest: the job could never run (unknown feature set, target, CPUs), or
                its model name is registered with another model type.
            TooManyRequests: the tenant's queue is full.
        """
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyClaim(idempotency_key, submission.digest())
        new_job = NewJob(
            tenant_id=submission.tenant_id,
            model_type=submission.model_type,
            model_name=submission.model_name,
            feature_set=submission.config.feature_set,
            priority=submission.priority_value,
            config=submission.config.model_dump(mode="json"),
            schedule_id=schedule.schedule_id if schedule else None,
            fire_time=schedule.fire_time if schedule else None,
        )
        return await self._admit(new_job, submission.config, claim)

    async def retry(self, job_id: str) -> JobRecord:
        """Queue a new job with a failed or cancelled job's config, tagged ``retry_of``.

        Raises:
            JobNotFound; Conflict (the job did not fail and was not cancelled);
            InvalidRequest, TooManyRequests: as ``submit``.
        """
        job = await self._store.get_job(job_id)
        if not can_retry(job.status):
            raise Conflict(
                f"only failed or cancelled jobs can be retried; this one is {job.status}"
            )
        new_job = NewJob(
            tenant_id=job.tenant_id,
            model_type=job.model_type,
            model_name=job.model_name,
            feature_set=job.feature_set,
            priority=job.priority,
            config=job.config,
            retry_of=job.job_id,
        )
        retried, _created = await self._admit(new_job, TrainingConfig.model_validate(job.config))
        return retried

    async def check_scheduled(self, job: Mapping[str, Any]) -> None:
        """Check a schedule's job as a submit would; fields are named ``job.*``.

        Raises:
            InvalidRequest: the schedule's job could never run.
        """
        submission = JobSubmission.model_validate(job)
        try:
            await asyncio.to_thread(self._validator.check, submission.tenant_id, submission.config)
        except InvalidRequest as exc:
            raise InvalidRequest(f"job.{exc.field}", exc.message) from exc

    async def _one_model_type(self, new_job: NewJob) -> None:
        """Raises: InvalidRequest: the name is another type's (registered, or of a job
        queued or running): its versions, aliases and champion are one model's."""
        types = await self._registry.model_types(new_job.tenant_id, new_job.model_name)
        others = sorted(types - {new_job.model_type})
        if others:
            raise InvalidRequest(
                "model_type",
                f"model {new_job.model_name!r} is a {others[0]} model: its versions, aliases "
                f"and champion are one model's; name a {new_job.model_type} model otherwise",
            )

    async def _admit(
        self, new_job: NewJob, config: TrainingConfig, claim: IdempotencyClaim | None = None
    ) -> tuple[JobRecord, bool]:
        earlier = await self._earlier(new_job, claim)
        if earlier is not None:
            return earlier, False
        # Read the feature store outside the lock: a slow read (S3) delays this submit only.
        sized = await asyncio.to_thread(self._validator.check, new_job.tenant_id, config)
        if sized is not config:  # a large feature set: the job trains data-parallel
            new_job = replace(new_job, config=sized.model_dump(mode="json"))
        async with self._lock:
            earlier = await self._earlier(new_job, claim)  # a twin got in meanwhile
            if earlier is not None:
                return earlier, False
            await self._one_model_type(new_job)  # in the lock: two new names queued together
            self._admission.admit(new_job.tenant_id, self._queue.queued_of(new_job.tenant_id))
            job = await self._store.create_job(
                new_job,
                logs=[service_log(new_job.job_id, "queued", self._clock())],
                idempotency=claim,
            )
            self._queue.push(
                job.job_id, job.tenant_id, job.priority, job.created_at, demand_of(sized)
            )
        self._on_queued()
        return job, True

    async def _earlier(self, new_job: NewJob, claim: IdempotencyClaim | None) -> JobRecord | None:
        """The job an earlier request with the same idempotency key created, if any.

        Raises:
            IdempotencyKeyReused: the key came with a different request.
        """
        if claim is None:
            return None
        earlier = await self._store.find_idempotent(
            new_job.tenant_id, claim.key, self._clock() - self._idempotency_window
        )
        if earlier is None:
            return None
        if earlier.request_hash != claim.request_hash:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {claim.key!r} was used for a different request"
            )
        return await self._store.get_job(earlier.job_id)
