"""The search stage: trials as one-CPU Ray tasks in the job's reservation, the data binned
once per worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import ObjectRef
from ray.exceptions import RayError

from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.preprocess import PreparedData
from pipeline.job_callbacks import JobCallbacks
from pipeline.placement import Placement, Slot, SlotPool
from pipeline.resources import TASK_CPUS
from pipeline.search.hpo import TrialPreempted, search
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


_remote_trial = ray.remote(max_retries=0)(_trial_task)


class _RayTrials:
    """Trials as one-CPU Ray tasks, each in a CPU of the job's bundles or trial slots,
    sharing one copy of the prepared data; each learns of the trials running beside it
    as they finish. The slots are asked again (``slots_now``) whenever trials could
    start: the orchestrator may take trial slots back for a more urgent job, and give
    them back later."""

    def __init__(
        self,
        context: JobContext,
        data: ObjectRef[Any],
        slots_now: Callable[[], list[Slot]],
    ) -> None:
        self._context = context
        self._data = data
        self._slots_now = slots_now
        self._pool = SlotPool(slots_now())
        self._slot_of: dict[ObjectRef[TrialReport], Slot] = {}

    def parallel(self) -> int:
        """Trials that may run at once now: one per CPU the job holds."""
        self._pool.update(self._slots_now())
        return self._pool.capacity

    def submit(
        self,
        number: int,
        params: dict[str, Any],
        completed: PruningHistory,
        running: list[Any],
    ) -> ObjectRef[TrialReport]:
        slot = self._pool.acquire()
        if slot is None:  # the search asks ``parallel`` first: never more than it allows
            raise RuntimeError(f"trial {number}: no free CPU in the job's reservation")
        job_id = self._context.job_id
        trial: ObjectRef[TrialReport] = _remote_trial.options(
            name=f"trial:{job_id}:{number}", **slot.options(TASK_CPUS)
        ).remote([self._data], self._context.config, number, params, completed, running)
        self._slot_of[trial] = slot
        return trial

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        if not pending:
            return []
        ready, _ = ray.wait(pending, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
        return list(ready)

    def result(self, handle: Any) -> TrialReport:
        slot = self._slot_of.pop(handle)
        self._pool.release(slot)
        try:
            report: TrialReport = ray.get(handle)
        except RayError:
            self._pool.update(self._slots_now())
            if not self._pool.granted(slot):
                raise TrialPreempted("its CPU was taken back for a more urgent job") from None
            raise
        return report

    def cancel(self, pending: list[Any]) -> None:
        for ref in pending:
            ray.cancel(ref)


def search_stage(
    context: JobContext,
    data: list[ObjectRef[Any]],
    preprocessed: StageReport,
    studies_root: Path,
    placement: Placement,
    callbacks: JobCallbacks | None,
) -> SearchResult:
    """The search stage: ``data`` comes boxed in a list so the trials, not this
    coordinator, receive it from the object store; ``preprocessed`` (the preprocess
    stage's report) holds the search back until the data exists. Started earlier, its
    trials would block on the data holding the CPUs preprocess needs. Trials run one per
    CPU of the job's bundles and of the trial slots it holds now."""
    config = context.config

    def report(trial: TrialReport, progress: SearchProgress) -> None:
        if callbacks is not None:
            callbacks.record_trial(trial, progress)

    def slots_now() -> list[Slot]:
        granted = callbacks.trial_slots() if callbacks is not None and placement.reserved else []
        return [*placement.workers(), *granted]

    journal = studies_root / f"{context.job_id}.journal"
    runner = _RayTrials(context, data[0], slots_now)
    stop = callbacks.is_cancelled if callbacks is not None else None
    return search(config, journal, context.job_id, runner.parallel, runner, report, stop)
