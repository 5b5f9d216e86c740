"""Typed clients over the orchestrator's actor handle.

``OrchestratorClient`` names each remote method through ``JobOrchestrator`` itself
(``actors.remote``), so mypy checks the name, the arguments and the result of every call:
a renamed actor method fails the type check, not a request. Ray's wrapping is undone at
the call: a ``JobNotFound`` raised in the actor is raised here as itself.
``TrainingClient`` wraps it for the cluster's operators, blocking on each call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import ray
from ray import ObjectRef
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from actors.orchestrator import JobOrchestrator
from actors.remote import remote
from actors.settings import NAMESPACE, ORCHESTRATOR_NAME
from actors.stats import Stats
from actors.submission import JobSubmission
from actors.waiting import QueueStatus
from db.policies import NewPolicy, PolicyRecord
from db.records import (
    ForecastRecord,
    JobFilters,
    JobRecord,
    LogRecord,
    ModelRecord,
    NewForecast,
    NewSchedule,
    Page,
    PromotionRecord,
    PurgeReport,
    ScheduleRecord,
)
from domain.errors import ServiceUnavailable, TrainingError

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def translated_ray_errors(callee: str = "the orchestrator") -> Iterator[None]:
    """A domain error raised inside an actor or a deployment, unwrapped from Ray's task
    error; a lost or restarting actor as ``ServiceUnavailable``."""
    try:
        yield
    except RayTaskError as exc:
        if isinstance(exc.cause, TrainingError):
            raise exc.cause from None
        raise
    except RayActorError as exc:
        raise ServiceUnavailable(f"{callee} is restarting; try again shortly") from exc


class OrchestratorClient:
    """One typed method per call the API's routes make (reads go to the database)."""

    def __init__(self, handle: ActorHandle[JobOrchestrator]) -> None:
        self._actor = handle

    @classmethod
    def find(cls, name: str = ORCHESTRATOR_NAME) -> OrchestratorClient:
        """The running orchestrator with that name, on the connected cluster.

        Raises:
            ServiceUnavailable: there is none (yet).
        """
        try:
            return cls(ray.get_actor(name, namespace=NAMESPACE))
        except ValueError as exc:
            raise ServiceUnavailable(f"the orchestrator {name!r} is not running") from exc

    def ref(
        self,
        method: Callable[Concatenate[JobOrchestrator, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> ObjectRef[R]:
        """Call ``method`` on the actor; its result to come."""
        return remote(self._actor, method, *args, **kwargs)

    async def _call(
        self,
        method: Callable[Concatenate[JobOrchestrator, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        with translated_ray_errors():
            return await self.ref(method, *args, **kwargs)

    async def submit_once(
        self, submission: JobSubmission, idempotency_key: str | None
    ) -> tuple[JobRecord, bool]:
        return await self._call(JobOrchestrator.submit_once, submission, idempotency_key)

    async def retry(self, job_id: str) -> JobRecord:
        return await self._call(JobOrchestrator.retry, job_id)

    async def cancel(self, job_id: str) -> JobRecord:
        return await self._call(JobOrchestrator.cancel, job_id)

    async def cancel_queued(self, tenant_id: str) -> list[str]:
        return await self._call(JobOrchestrator.cancel_queued, tenant_id)

    async def stats(self, tenant_id: str | None = None) -> Stats:
        return await self._call(JobOrchestrator.stats, tenant_id)

    async def queue_statuses(
        self, job_ids: list[str], tenant_only: bool = False
    ) -> dict[str, QueueStatus]:
        return await self._call(JobOrchestrator.queue_statuses, job_ids, tenant_only)

    async def held_cpus(self, job_id: str) -> int | None:
        return await self._call(JobOrchestrator.held_cpus, job_id)

    async def set_alias(
        self, tenant_id: str, model_name: str, alias: str, version: str
    ) -> ModelRecord:
        return await self._call(JobOrchestrator.set_alias, tenant_id, model_name, alias, version)

    async def delete_alias(self, tenant_id: str, model_name: str, alias: str) -> None:
        return await self._call(JobOrchestrator.delete_alias, tenant_id, model_name, alias)

    async def rollback(self, tenant_id: str, model_name: str, reason: str) -> PromotionRecord:
        return await self._call(JobOrchestrator.rollback, tenant_id, model_name, reason)

    async def start_forecast(self, forecast: NewForecast) -> ForecastRecord:
        return await self._call(JobOrchestrator.start_forecast, forecast)

    async def log_predictions(
        self, model_id: str, predictions: list[dict[str, Any]]
    ) -> ForecastRecord | None:
        return await self._call(JobOrchestrator.log_predictions, model_id, predictions)

    async def create_schedule(self, schedule: NewSchedule) -> ScheduleRecord:
        return await self._call(JobOrchestrator.create_schedule, schedule)

    async def update_schedule(self, schedule_id: str, changes: dict[str, Any]) -> ScheduleRecord:
        return await self._call(JobOrchestrator.update_schedule, schedule_id, changes)

    async def delete_schedule(self, schedule_id: str) -> None:
        return await self._call(JobOrchestrator.delete_schedule, schedule_id)

    async def create_policy(self, policy: NewPolicy) -> PolicyRecord:
        return await self._call(JobOrchestrator.create_policy, policy)

    async def update_policy(self, policy_id: str, changes: dict[str, Any]) -> PolicyRecord:
        return await self._call(JobOrchestrator.update_policy, policy_id, changes)

    async def delete_policy(self, policy_id: str) -> None:
        return await self._call(JobOrchestrator.delete_policy, policy_id)

    async def cleanup(self) -> PurgeReport:
        return await self._call(JobOrchestrator.cleanup)

    async def metrics_text(self) -> str:
        return await self._call(JobOrchestrator.metrics_text)

    def count_database_error(self) -> None:
        """Fire and forget."""
        self.ref(JobOrchestrator.count_database_error)


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

    def _get(
        self,
        method: Callable[Concatenate[JobOrchestrator, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        with translated_ray_errors():
            return ray.get(self._orchestrator.ref(method, *args, **kwargs))

    def submit(self, submission: JobSubmission, idempotency_key: str | None = None) -> JobRecord:
        """Queue a job; with ``idempotency_key``, a repeat of a call whose answer was lost
        (a restarting orchestrator) gets the job the first made, not a second one."""
        if idempotency_key is None:
            return self._get(JobOrchestrator.submit, submission)
        job, _ = self._get(JobOrchestrator.submit_once, submission, idempotency_key)
        return job

    def get(self, job_id: str) -> JobRecord:
        return self._get(JobOrchestrator.get_job, job_id)

    def list_jobs(
        self, filters: JobFilters | None = None, page: int = 1, page_size: int = 20
    ) -> Page[JobRecord]:
        return self._get(JobOrchestrator.list_jobs, filters or JobFilters(), page, page_size)

    def cancel(self, job_id: str) -> JobRecord:
        return self._get(JobOrchestrator.cancel, job_id)

    def retry(self, job_id: str) -> JobRecord:
        return self._get(JobOrchestrator.retry, job_id)

    def logs(self, job_id: str, tail: int = 100) -> list[LogRecord]:
        return self._get(JobOrchestrator.logs, job_id, tail)

    def stats(self) -> Stats:
        return self._get(JobOrchestrator.stats)

    def held_cpus(self, job_id: str) -> int | None:
        """The CPUs a running job's reservation holds now; None if it is not running."""
        return self._get(JobOrchestrator.held_cpus, job_id)

    def wait(self, job_id: str, timeout: float = 600.0, poll_seconds: float = 0.25) -> JobRecord:
        """Block until the job has finished and return it.

        A database outage or a restarting orchestrator is waited out, as the job is.

        Raises:
            TimeoutError: it has not finished within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                job = self.get(job_id)
            except ServiceUnavailable as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id}: no answer within {timeout}s: {exc}") from exc
            else:
                if job.status.is_finished():
                    return job
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} is still {job.status} after {timeout}s")
            time.sleep(poll_seconds)
