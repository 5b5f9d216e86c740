"""Admission by resources on a multi-node cluster: a 2-CPU head that runs no tasks
(``num_cpus=0``) and three 2-CPU workers (``ray.cluster_utils.Cluster``; every node
shares this machine's cores), the orchestrator driven through its actor handle.

Every second a sampler reads Ray's state API and the orchestrator:
  - how long each task of a running job has waited in Ray's queue for a node
    (``PENDING_NODE_ASSIGNMENT``);
  - the CPUs the running jobs reserve against the cluster's;
  - each running job's reservation (a job running without one counts its seconds).

Scenarios:
  urgent  an urgent 1-CPU job alone; then beside a low-priority 40-trial search (4 trials
          at once) and two normal 1-CPU jobs with one CPU left free; then with the
          cluster full (the search takes the free CPU back), so the urgent job needs a
          trial slot taken back. On 2 cores six busy CPUs slow every task about threefold
          whatever the scheduler does, so the scheduler's cost is the full run's time
          over the one-CPU-free run's; the ratio to the job alone is printed too.
  mix     jobs holding 1, 2, 4 (a search, 4 trials at once) and 6 CPUs (data-parallel,
          3 workers x 2) submitted at once: all complete; a job with one 4-CPU task and
          one needing more CPUs than the cluster has are refused (HTTP 422).

Usage: ``python -m bench.scheduling`` (about six minutes); prints a JSON line last.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_tasks

from actors.client import TrainingClient
from actors.settings import NAMESPACE
from actors.submission import JobSubmission
from db.records import JobFilters
from domain.errors import IllegalTransition, InvalidRequest
from domain.jobs import JobStatus
from tests.cluster.multinode import client_for
from tests.network import free_port

#: About ten seconds of one-CPU training for the urgent job alone on an idle machine.
URGENT: dict[str, Any] = {
    "hyperparameters": {"n_estimators": 3000, "learning_rate": 0.01, "objective": "regression"},
    "early_stopping_rounds": 0,
    "quantiles": [],
}
#: Jobs that keep their CPU busy for well past the urgent job's run.
FILLER = {**URGENT, "hyperparameters": {**URGENT["hyperparameters"], "n_estimators": 20_000}}
SMALL = {"hyperparameters": {"objective": "regression", "n_estimators": 200}, "quantiles": []}
#: A low-priority 40-trial search whose trials each train 600 rounds (a few seconds).
SEARCH: dict[str, Any] = {
    "enable_hpo": True,
    "n_trials": 40,
    "hyperparameters": {
        "n_estimators": 600,
        "learning_rate": {"type": "loguniform", "low": 0.01, "high": 0.3},
        "num_leaves": {"type": "int", "low": 8, "high": 128},
    },
    "early_stopping_rounds": 0,
    "pruning": False,
    "quantiles": [],
}
JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def submission(
    config: dict[str, Any], priority: str = "normal", name: str = "bench"
) -> JobSubmission:
    return JobSubmission.model_validate(
        {
            "tenant_id": "bench",
            "model_type": "forecast",
            "model_name": name,
            "priority": priority,
            "config": {"feature_set": "forecast_basic", "target_variable": "load_kw", **config},
        }
    )


class Sampler(threading.Thread):
    """Once a second: the waits of running jobs' tasks in Ray's queue, the CPUs reserved
    against the cluster's, and running jobs without a reservation."""

    def __init__(self, client: TrainingClient) -> None:
        super().__init__(daemon=True)
        self._client = client
        self._done = threading.Event()
        self._first_seen: dict[str, float] = {}
        self.longest_wait = 0.0
        self.longest_waiter = ""
        self.overbooked = 0
        self.unreserved_seconds = 0
        self.samples = 0
        self.peak_reserved = 0

    def run(self) -> None:
        address = ray.get_runtime_context().gcs_address
        while not self._done.wait(1.0):
            now = time.monotonic()
            running = {
                job.job_id
                for job in self._client.list_jobs(
                    JobFilters(status=JobStatus.RUNNING), 1, 100
                ).items
            }
            waiting = list_tasks(
                address=address,
                filters=[("state", "=", "PENDING_NODE_ASSIGNMENT")],
                limit=10_000,
            )
            seen = set()
            for task in waiting:
                found = JOB_ID.search(task.name or "")
                if found is None or found.group(0) not in running:
                    continue
                seen.add(task.task_id)
                waited = now - self._first_seen.setdefault(task.task_id, now)
                if waited > self.longest_wait:
                    self.longest_wait, self.longest_waiter = waited, task.name
            self._first_seen = {k: v for k, v in self._first_seen.items() if k in seen}
            stats = self._client.stats()
            self.peak_reserved = max(self.peak_reserved, stats.cpus_reserved)
            self.overbooked += stats.cpus_reserved > stats.cluster_cpus
            self.unreserved_seconds += sum(
                1 for job_id in running if not self._client.held_cpus(job_id)
            )
            self.samples += 1

    def stop(self) -> dict[str, Any]:
        self._done.set()
        self.join()
        return {
            "samples": self.samples,
            "longest_queue_wait_s": round(self.longest_wait, 1),
            "longest_waiter": self.longest_waiter,
            "samples_overbooked": self.overbooked,
            "peak_cpus_reserved": self.peak_reserved,
            "seconds_running_without_reservation": self.unreserved_seconds,
        }


def timing(client: TrainingClient, job_id: str) -> dict[str, float]:
    job = client.wait(job_id, timeout=900)
    assert job.status is JobStatus.COMPLETED, (job.status, job.error_message)
    assert job.started_at is not None
    assert job.completed_at is not None
    return {
        "waited_s": (job.started_at - job.created_at).total_seconds(),
        "took_s": (job.completed_at - job.created_at).total_seconds(),
    }


def trial_seconds(job_id: str) -> list[float]:
    """How long each finished trial of the search ran, from Ray's state API."""
    finished = list_tasks(
        address=ray.get_runtime_context().gcs_address,
        filters=[("state", "=", "FINISHED")],
        limit=10_000,
        detail=True,
    )
    return [
        (task.end_time_ms - task.start_time_ms) / 1000
        for task in finished
        if (task.name or "").startswith(f"trial:{job_id}:")
        and task.end_time_ms
        and task.start_time_ms
    ]


def running(client: TrainingClient, job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.get(job_id).status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline, f"job {job_id} never ran"
        time.sleep(0.2)


def urgent_beside_search(client: TrainingClient, trials_at_once: int) -> dict[str, Any]:
    """The urgent job submitted once a low-priority search and two normal jobs run."""
    search = client.submit(submission({**SEARCH, "n_workers": trials_at_once}, "low")).job_id
    running(client, search)
    fillers = [client.submit(submission(FILLER)).job_id for _ in range(2)]
    for job_id in fillers:
        running(client, job_id)
    time.sleep(3.0)  # the search well into its trials
    urgent = client.submit(submission(URGENT, "urgent")).job_id
    result: dict[str, Any] = dict(timing(client, urgent))
    logs = [line.message for line in client.logs(search, 1000)]
    trials = trial_seconds(search)
    result["trial_median_s"] = statistics.median(trials) if trials else float("nan")
    result["search_log"] = [line for line in logs if "taken back" in line]
    result["search_running_at_the_end"] = client.get(search).status is JobStatus.RUNNING
    for job_id in [search, *fillers]:
        with contextlib.suppress(IllegalTransition):
            client.cancel(job_id)
        client.wait(job_id, timeout=120)
    return result


def mix(client: TrainingClient) -> dict[str, Any]:
    jobs = {
        "1 cpu": submission(SMALL),
        "2 cpus": submission({**SMALL, "n_workers": 2}),
        "4 cpus (search)": submission({**SMALL, "enable_hpo": True, "n_trials": 8, "n_workers": 4}),
        "6 cpus (3 x 2 data-parallel)": submission(
            {**SMALL, "n_workers": 2, "distributed": {"workers": 3}}
        ),
    }
    ids = {name: client.submit(job).job_id for name, job in jobs.items()}
    out: dict[str, Any] = {name: timing(client, job_id) for name, job_id in ids.items()}
    refused = {}
    for name, config in {
        "one 4-CPU task": {**SMALL, "n_workers": 4},
        "8 CPUs on 6": {**SMALL, "n_workers": 2, "distributed": {"workers": 4}},
    }.items():
        try:
            client.submit(submission(config))
            refused[name] = "accepted"
        except InvalidRequest as exc:
            refused[name] = f"422 {exc.field}: {exc.message}"
    out["refused"] = refused
    return out


def main() -> None:
    head = {"num_cpus": 0, "dashboard_port": free_port(), "temp_dir": tempfile.mkdtemp()}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(3):
        cluster.add_node(num_cpus=2)
    os.environ["RAY_ADDRESS"] = cluster.address
    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    out: dict[str, Any] = {}
    client = client_for(Path(tempfile.mkdtemp()), "orchestrator-scheduling", retries=0)
    sampler = Sampler(client)
    sampler.start()
    try:
        out["urgent_alone"] = timing(client, client.submit(submission(URGENT, "urgent")).job_id)
        print(f"urgent alone: {out['urgent_alone']}", file=sys.stderr)
        out["urgent_one_cpu_free"] = urgent_beside_search(client, trials_at_once=3)
        print(f"urgent, one CPU free: {out['urgent_one_cpu_free']}", file=sys.stderr)
        out["urgent_cluster_full"] = urgent_beside_search(client, trials_at_once=4)
        print(f"urgent, cluster full: {out['urgent_cluster_full']}", file=sys.stderr)
        out["mix"] = mix(client)
    finally:
        out["sampled"] = sampler.stop()
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]
    report(out)
    json.dump(out, sys.stdout)
    print()


def report(out: dict[str, Any]) -> None:
    alone, free, full = (
        out[k] for k in ("urgent_alone", "urgent_one_cpu_free", "urgent_cluster_full")
    )
    print("urgent 1-CPU job: waited before running / submit to completion", file=sys.stderr)
    for name, run in (("alone", alone), ("one CPU free", free), ("cluster full", full)):
        print(f"  {name:13} {run['waited_s']:6.1f} s / {run['took_s']:6.1f} s", file=sys.stderr)
    print(
        f"  full / one CPU free: {full['took_s'] / free['took_s']:.2f}x; "
        f"full / alone: {full['took_s'] / alone['took_s']:.2f}x; "
        f"a trial's median {full['trial_median_s']:.1f} s",
        file=sys.stderr,
    )
    for name, run in out["mix"].items():
        if name != "refused":
            print(f"  mix {name:30} {run['took_s']:6.1f} s", file=sys.stderr)
    for name, why in out["mix"]["refused"].items():
        print(f"  refused {name}: {why}", file=sys.stderr)
    print(f"  sampled: {out['sampled']}", file=sys.stderr)


if __name__ == "__main__":
    main()
