"""The search stage: trials as one-CPU Ray tasks, the data binned once per worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
from ray import ObjectRef
from ray.exceptions import RayError

from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.preprocess import PreparedData
from pipeline.job_callbacks import JobCallbacks
from pipeline.search.hpo import search
from pipeline.search.pruning import PruningHistory
from pipeline.search.trials import run_trial
from pipeline.search_results import SearchProgress, SearchResult, TrialReport
from pipeline.stages import StageReport
from pipeline.training.fitting import BinnedData, bin_data


class _SearchData:
    """The prepared data of the search this worker last ran a trial for, fetched from the
    object store and binned once: a worker runs one trial after another, so every trial
    but its first in a search skips both. One search's data is kept per worker process."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._data: PreparedData | None = None
        self._binned: BinnedData | None = None

    def get(
        self, ref: ObjectRef[PreparedData], config: TrainingConfig
    ) -> tuple[PreparedData, BinnedData]:
        if self._key != ref.hex() or self._data is None or self._binned is None:
            self._key = None
            self._data = ray.get(ref)
            self._binned = bin_data(self._data, config.lightgbm_params())
            self._key = ref.hex()
        return self._data, self._binned


_search_data = _SearchData()


class _FinishedPeers:
    """The trials that were running when a trial started, as they finish (see run_trial)."""

    def __init__(self, running: list[ObjectRef[TrialReport]]) -> None:
        self._running = running

    def __call__(self) -> list[TrialReport]:
        if not self._running:
            return []
        ready, self._running = ray.wait(self._running, num_returns=len(self._running), timeout=0)
        reports = []
        for ref in ready:
            try:
                reports.append(ray.get(ref))
            except RayError:  # a failed or cancelled peer tells nothing
                continue
        return reports


def _trial_task(
    data: list[ObjectRef[PreparedData]],
    config: TrainingConfig,
    number: int,
    params: dict[str, Any],
    completed: PruningHistory,
    running: list[ObjectRef[TrialReport]],
) -> TrialReport:
    prepared, binned = _search_data.get(data[0], config)
    peers = _FinishedPeers(running)
    return run_trial(prepared, config, number, params, completed, peers, binned)


_remote_trial = ray.remote(num_cpus=1, max_retries=0)(_trial_task)


class _RayTrials:
    """Trials as one-CPU Ray tasks sharing one copy of the prepared data; each learns of
    the trials running beside it as they finish."""

    def __init__(self, context: JobContext, data: ObjectRef[Any]) -> None:
        self._context = context
        self._data = data

    @staticmethod
    def cluster_cpus() -> int:
        """Trials at once by default: one per CPU of the cluster (asked again as trials
        end, so a search widens when the autoscaler adds nodes). Ray starts each trial
        as soon as a CPU is free. Ray's view of *free* CPUs lags tasks ending by up to
        seconds: read just after preprocess it showed that stage's CPU still held, and
        the search ran its trials one at a time."""
        return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]

    def submit(
        self,
        number: int,
        params: dict[str, Any],
        completed: PruningHistory,
        running: list[Any],
    ) -> ObjectRef[TrialReport]:
        job_id = self._context.job_id
        trial: ObjectRef[TrialReport] = _remote_trial.options(
            name=f"trial:{job_id}:{number}"
        ).remote([self._data], self._context.config, number, params, completed, running)
        return trial

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        if not pending:
            return []
        ready, _ = ray.wait(pending, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
        return list(ready)

    def result(self, handle: Any) -> TrialReport:
        report: TrialReport = ray.get(handle)
        return report

    def cancel(self, pending: list[Any]) -> None:
        for ref in pending:
            ray.cancel(ref)


def search_stage(
    context: JobContext,
    data: list[ObjectRef[Any]],
    preprocessed: StageReport,
    studies_root: Path,
    callbacks: JobCallbacks | None,
) -> SearchResult:
    """The search stage: ``data`` comes boxed in a list so the trials, not this
    coordinator, receive it from the object store; ``preprocessed`` (the preprocess
    stage's report) holds the search back until the data exists. Started earlier, its
    trials would block on the data holding the CPUs preprocess needs."""
    config = context.config

    def report(trial: TrialReport, progress: SearchProgress) -> None:
        if callbacks is not None:
            callbacks.record_trial(trial, progress)

    journal = studies_root / f"{context.job_id}.journal"
    runner = _RayTrials(context, data[0])
    workers = config.n_workers
    parallel = (lambda: workers) if workers else runner.cluster_cpus
    stop = callbacks.is_cancelled if callbacks is not None else None
    return search(config, journal, context.job_id, parallel, runner, report, stop)
