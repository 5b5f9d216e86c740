"""The search stage: trials as one-CPU Ray tasks in the job's reservation, the data binned
once per worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import ObjectRef
from ray.exceptions import RayError

from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.features.preprocess import PreparedData
from pipeline.graph.fanout import cancel
from pipeline.job_callbacks import JobCallbacks
from pipeline.placement import Bundle, BundlePool, Placement
from pipeline.resources import TASK_CPUS
from pipeline.search.hpo import search
from pipeline.search.pruning import PruningHistory
from pipeline.search.runner import TrialPreempted
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

#: How often a search asks which trial slots its job holds (besides when a trial fails).
SLOTS_POLL_SECONDS = 2.0


class _RayTrials:
    """Trials as one-CPU Ray tasks, each in a CPU of the job's bundles or trial slots,
    sharing one copy of the prepared data; each learns of the trials running beside it
    as they finish. The trial slots are asked again (``slots_now``, None when nobody can
    say) every ``SLOTS_POLL_SECONDS`` and whenever a trial fails: the orchestrator may
    take slots back for a more urgent job, and give them back later."""

    def __init__(
        self,
        context: JobContext,
        data: ObjectRef[Any],
        bundles: list[Bundle],
        slots_now: Callable[[], list[Bundle] | None],
    ) -> None:
        self._context = context
        self._data = data
        self._bundles = bundles
        self._slots_now = slots_now
        self._pool = BundlePool(bundles)
        self._asked = -SLOTS_POLL_SECONDS
        self._bundle_of: dict[ObjectRef[TrialReport], Bundle] = {}

    def parallel(self) -> int:
        """Trials that may run at once now: one per CPU the job holds."""
        if time.monotonic() - self._asked >= SLOTS_POLL_SECONDS:
            self._refresh()
        return self._pool.capacity

    def _refresh(self) -> None:
        self._asked = time.monotonic()
        slots = self._slots_now()
        if slots is not None:  # unknown: keep what was granted
            self._pool.update([*self._bundles, *slots])

    def submit(
        self,
        number: int,
        params: dict[str, Any],
        completed: PruningHistory,
        running: list[Any],
    ) -> ObjectRef[TrialReport]:
        bundle = self._pool.acquire()
        if bundle is None:  # the search asks ``parallel`` first: never more than it allows
            raise RuntimeError(f"trial {number}: no free CPU in the job's reservation")
        job_id = self._context.job_id
        trial: ObjectRef[TrialReport] = _remote_trial.options(
            name=f"trial:{job_id}:{number}", **bundle.options(TASK_CPUS)
        ).remote([self._data], self._context.config, number, params, completed, running)
        self._bundle_of[trial] = bundle
        return trial

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        if not pending:
            return []
        ready, _ = ray.wait(pending, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
        return list(ready)

    def result(self, handle: Any) -> TrialReport:
        bundle = self._bundle_of.pop(handle)
        self._pool.release(bundle)
        try:
            report: TrialReport = ray.get(handle)
        except RayError:
            self._refresh()
            if not self._pool.granted(bundle):
                raise TrialPreempted("its CPU was taken back for a more urgent job") from None
            raise
        return report

    def cancel(self, pending: list[Any]) -> None:
        cancel(pending)  # asked again, and killed if a cancel was lost


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

    def slots_now() -> list[Bundle] | None:
        if callbacks is None or not placement.reserved:
            return []
        return callbacks.trial_slots()

    journal = studies_root / f"{context.job_id}.journal"
    runner = _RayTrials(context, data[0], placement.workers(), slots_now)
    stop = callbacks.is_cancelled if callbacks is not None else None
    return search(config, journal, context.job_id, runner.parallel, runner, report, stop)
