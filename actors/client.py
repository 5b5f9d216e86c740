"""Typed clients over the orchestrator's actor handle.

``OrchestratorClient`` names each remote method through ``JobOrchestrator`` itself, so mypy
checks the name, the arguments and the result of every call: a renamed actor method fails
the type check, not a request. Each call returns its ``ObjectRef``, which the API's routes
await. ``TrainingClient`` wraps it for the cluster's operators, blocking on each call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import ray
from ray import ObjectRef
from ray.actor import ActorHandle

from actors.lifecycle import QueueStatus
from actors.orchestrator import JobOrchestrator, Stats
from actors.settings import NAMESPACE, ORCHESTRATOR_NAME
from actors.submission import JobSubmission
from db.records import JobFilters, JobRecord, LogRecord, ModelRecord, Page, PurgeReport
from db.schedules import NewSchedule, ScheduleRecord

P = ParamSpec("P")
R = TypeVar("R")


class OrchestratorClient:
    """One typed method per remote call the API makes."""

    def __init__(self, handle: ActorHandle[JobOrchestrator]) -> None:
        self._actor: Any = handle

    @classmethod
    def find(cls, name: str = ORCHESTRATOR_NAME) -> OrchestratorClient:
        """The running orchestrator with that name, on the connected cluster."""
        return cls(ray.get_actor(name, namespace=NAMESPACE))

    def _call(
        self,
        method: Callable[Concatenate[JobOrchestrator, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> ObjectRef[R]:
        ref: ObjectRef[R] = getattr(self._actor, method.__name__).remote(*args, **kwargs)
        return ref

    def submit(self, submission: JobSubmission) -> ObjectRef[JobRecord]:
        return self._call(JobOrchestrator.submit, submission)

    def submit_once(
        self, submission: JobSubmission, idempotency_key: str | None
    ) -> ObjectRef[tuple[JobRecord, bool]]:
        return self._call(JobOrchestrator.submit_once, submission, idempotency_key)

    def retry(self, job_id: str) -> ObjectRef[JobRecord]:
        return self._call(JobOrchestrator.retry, job_id)

    def cancel(self, job_id: str) -> ObjectRef[JobRecord]:
        return self._call(JobOrchestrator.cancel, job_id)

    def cancel_queued(self, tenant_id: str) -> ObjectRef[list[str]]:
        return self._call(JobOrchestrator.cancel_queued, tenant_id)

    def get_job(self, job_id: str) -> ObjectRef[JobRecord]:
        return self._call(JobOrchestrator.get_job, job_id)

    def list_jobs(
        self, filters: JobFilters, page: int, page_size: int
    ) -> ObjectRef[Page[JobRecord]]:
        return self._call(JobOrchestrator.list_jobs, filters, page, page_size)

    def logs(self, job_id: str, tail: int) -> ObjectRef[list[LogRecord]]:
        return self._call(JobOrchestrator.logs, job_id, tail)

    def stats(self, tenant_id: str | None = None) -> ObjectRef[Stats]:
        return self._call(JobOrchestrator.stats, tenant_id)

    def queue_status(self, job_id: str) -> ObjectRef[QueueStatus | None]:
        return self._call(JobOrchestrator.queue_status, job_id)

    def set_alias(
        self, tenant_id: str, model_name: str, alias: str, version: str
    ) -> ObjectRef[ModelRecord]:
        return self._call(JobOrchestrator.set_alias, tenant_id, model_name, alias, version)

    def delete_alias(self, tenant_id: str, model_name: str, alias: str) -> ObjectRef[None]:
        return self._call(JobOrchestrator.delete_alias, tenant_id, model_name, alias)

    def create_schedule(self, schedule: NewSchedule) -> ObjectRef[ScheduleRecord]:
        return self._call(JobOrchestrator.create_schedule, schedule)

    def update_schedule(
        self, schedule_id: str, changes: dict[str, Any]
    ) -> ObjectRef[ScheduleRecord]:
        return self._call(JobOrchestrator.update_schedule, schedule_id, changes)

    def delete_schedule(self, schedule_id: str) -> ObjectRef[None]:
        return self._call(JobOrchestrator.delete_schedule, schedule_id)

    def fire_schedules(self, now: datetime | None = None) -> ObjectRef[list[str]]:
        return self._call(JobOrchestrator.fire_schedules, now)

    def cleanup(self) -> ObjectRef[PurgeReport]:
        return self._call(JobOrchestrator.cleanup)

    def metrics_text(self) -> ObjectRef[str]:
        return self._call(JobOrchestrator.metrics_text)

    def count_database_error(self) -> ObjectRef[None]:
        return self._call(JobOrchestrator.count_database_error)

    def ready(self) -> ObjectRef[bool]:
        return self._call(JobOrchestrator.ready)


class TrainingClient:
    """A blocking client for the cluster's operators.

    It talks to the actor directly (no HTTP, no API keys), so it sees and changes every
    tenant's jobs: use it only from code the cluster's operators run with access to the
    Ray cluster, e.g. a notebook on the head node. Teams use the HTTP API with their keys.
    """

    def __init__(self, orchestrator: OrchestratorClient) -> None:
        self._orchestrator = orchestrator

    @classmethod
    def connect(cls, address: str = "auto", name: str = ORCHESTRATOR_NAME) -> TrainingClient:
        """Join a running cluster and find its orchestrator."""
        if not ray.is_initialized():
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
        return cls(OrchestratorClient.find(name))

    def submit(self, submission: JobSubmission) -> JobRecord:
        return ray.get(self._orchestrator.submit(submission))

    def get(self, job_id: str) -> JobRecord:
        return ray.get(self._orchestrator.get_job(job_id))

    def list_jobs(
        self, filters: JobFilters | None = None, page: int = 1, page_size: int = 20
    ) -> Page[JobRecord]:
        return ray.get(self._orchestrator.list_jobs(filters or JobFilters(), page, page_size))

    def cancel(self, job_id: str) -> JobRecord:
        return ray.get(self._orchestrator.cancel(job_id))

    def retry(self, job_id: str) -> JobRecord:
        return ray.get(self._orchestrator.retry(job_id))

    def logs(self, job_id: str, tail: int = 100) -> list[LogRecord]:
        return ray.get(self._orchestrator.logs(job_id, tail))

    def stats(self) -> Stats:
        return ray.get(self._orchestrator.stats())

    def wait(self, job_id: str, timeout: float = 600.0, poll_seconds: float = 0.25) -> JobRecord:
        """Block until the job has finished and return it.

        Raises:
            TimeoutError: it has not finished within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status.is_finished():
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout}s")
            time.sleep(poll_seconds)
