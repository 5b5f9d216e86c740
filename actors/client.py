"""A typed Python client over the orchestrator's actor handle, for the cluster's operators.

It talks to the actor directly (no HTTP, no API keys), so it sees and changes every
tenant's jobs: use it only from code the cluster's operators run with access to the Ray
cluster, e.g. a notebook on the head node. Teams use the HTTP API with their keys.
"""

from __future__ import annotations

import time
from typing import Any

import ray
from ray.actor import ActorHandle

from actors.orchestrator import JobOrchestrator, Stats
from actors.settings import NAMESPACE, ORCHESTRATOR_NAME
from actors.submission import JobSubmission
from db.records import JobFilters, JobRecord, LogRecord, Page


class TrainingClient:
    def __init__(self, handle: ActorHandle[JobOrchestrator]) -> None:
        self._actor = handle

    @classmethod
    def connect(cls, address: str = "auto", name: str = ORCHESTRATOR_NAME) -> TrainingClient:
        """Join a running cluster and find its orchestrator."""
        if not ray.is_initialized():
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
        return cls(ray.get_actor(name, namespace=NAMESPACE))

    def _call(self, method: str, *args: Any) -> Any:
        return ray.get(getattr(self._actor, method).remote(*args))

    def submit(self, submission: JobSubmission) -> JobRecord:
        result: JobRecord = self._call("submit", submission)
        return result

    def get(self, job_id: str) -> JobRecord:
        result: JobRecord = self._call("get_job", job_id)
        return result

    def list_jobs(
        self, filters: JobFilters | None = None, page: int = 1, page_size: int = 20
    ) -> Page[JobRecord]:
        result: Page[JobRecord] = self._call("list_jobs", filters or JobFilters(), page, page_size)
        return result

    def cancel(self, job_id: str) -> JobRecord:
        result: JobRecord = self._call("cancel", job_id)
        return result

    def retry(self, job_id: str) -> JobRecord:
        result: JobRecord = self._call("retry", job_id)
        return result

    def logs(self, job_id: str, tail: int = 100) -> list[LogRecord]:
        result: list[LogRecord] = self._call("logs", job_id, tail)
        return result

    def stats(self) -> Stats:
        result: Stats = self._call("stats")
        return result

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
