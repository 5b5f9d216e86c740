"""Distributed hyperparameter search: an Optuna ask/tell loop that runs trials as Ray tasks.

The coordinator (the ``search`` stage, a task holding no CPU) asks a seeded TPE sampler for
parameters and dispatches each trial as a one-CPU task named ``trial:<job_id>:<number>``
to a warm worker. Every trial receives the same prepared data from the object store. The
study lives in an Optuna journal file, so a search interrupted by a restart resumes: its
finished trials count, and the ones that were running are marked interrupted and run again.
Trials report the validation L1 every few rounds and the median pruner stops poor ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from domain.errors import PipelineError
from pipeline.config import HyperparameterSpec, TrainingConfig
from pipeline.preprocess import PreparedData
from pipeline.train import fit

logger = logging.getLogger(__name__)

#: Trials report their validation L1 to the pruner every this many boosting rounds.
REPORT_EVERY = 5
#: No trial is pruned before this many rounds.
WARMUP_ROUNDS = 25
SAMPLER_SEED = 42
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class TrialReport:
    """One finished trial, as the orchestrator records it."""

    number: int
    state: str  # "completed", "pruned" or "failed"
    value: float | None
    params: dict[str, Any]
    best_iteration: int | None
    curve: list[float] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class SearchProgress:
    """The study's tallies after a trial, for the job's status."""

    n_trials: int
    completed: int
    pruned: int
    failed: int
    best_value: float | None
    best_params: dict[str, Any] | None

    @property
    def finished(self) -> int:
        return self.completed + self.pruned + self.failed

    def as_metrics(self) -> dict[str, Any]:
        return {
            "trials_completed": self.completed,
            "trials_pruned": self.pruned,
            "trials_failed": self.failed,
            "best_value": self.best_value,
            "best_params": self.best_params,
        }


@dataclass(frozen=True)
class SearchResult:
    study_name: str
    storage: str
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_iteration: int
    progress: SearchProgress
    params: dict[str, Any]  # the LightGBM parameters to retrain with: fixed + best searched

    def summary(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "storage": self.storage,
            "best_trial": self.best_trial,
            "best_value": self.best_value,
            "best_iteration": self.best_iteration,
            "n_trials": self.progress.finished,
            **self.progress.as_metrics(),
        }


def distribution(spec: HyperparameterSpec) -> BaseDistribution:
    if spec.type == "categorical":
        return CategoricalDistribution(spec.choices or [])
    assert spec.low is not None
    assert spec.high is not None
    if spec.type == "int":
        return IntDistribution(int(spec.low), int(spec.high))
    return FloatDistribution(spec.low, spec.high, log=spec.type == "loguniform")


def journal_storage(journal: Path) -> JournalStorage:
    journal.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(journal)))


def open_study(storage: JournalStorage, name: str, config: TrainingConfig) -> optuna.Study:
    """Create the job's study, or load it to resume."""
    startup = min(5, max(1, config.n_trials // 4))
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=WARMUP_ROUNDS)
        if config.pruning
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED),
        pruner=pruner,
        direction="minimize",
        load_if_exists=True,
    )


def run_trial(
    data: PreparedData,
    config: TrainingConfig,
    journal: Path,
    study_name: str,
    number: int,
    params: dict[str, Any],
) -> TrialReport:
    """Train one trial (in a one-CPU task), reporting to the pruner as it goes."""
    started = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = journal_storage(journal)
    study = open_study(storage, study_name, config)
    study_id = storage.get_study_id_from_name(study_name)
    trial = optuna.trial.Trial(
        study, storage.get_trial_id_from_study_id_trial_number(study_id, number)
    )
    pruned_at: list[float] = []

    def report(env: lgb.callback.CallbackEnv) -> None:
        step = env.iteration + 1
        if step % REPORT_EVERY:
            return
        value = next(r[2] for r in env.evaluation_result_list or [] if r[1] == "l1")
        trial.report(value, step)
        if trial.should_prune():
            pruned_at.append(value)
            raise optuna.TrialPruned(f"pruned at round {step}")

    merged = {**config.lightgbm_params(), **params}
    try:
        model = fit(data, merged, config.early_stopping_rounds, 1, extra_callbacks=[report])
    except optuna.TrialPruned:
        return TrialReport(
            number, "pruned", pruned_at[-1], params, None, seconds=time.perf_counter() - started
        )
    curve = model.curve["l1"]
    return TrialReport(
        number=number,
        state="completed",
        value=curve[model.best_iteration - 1],
        params=params,
        best_iteration=model.best_iteration,
        curve=curve,
        seconds=time.perf_counter() - started,
    )


class TrialRunner(Protocol):
    """Where trials run: Ray tasks in the service (``pipeline.graph``)."""

    def submit(self, number: int, params: dict[str, Any]) -> Any: ...

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        """The handles of ``pending`` that have finished (waits up to ``timeout``)."""
        ...

    def result(self, handle: Any) -> TrialReport:
        """The trial's report; raises what the trial raised."""
        ...

    def cancel(self, pending: list[Any]) -> None: ...


def search(
    config: TrainingConfig,
    journal: Path,
    study_name: str,
    parallel: int,
    runner: TrialRunner,
    report: Callable[[TrialReport, SearchProgress], None],
) -> SearchResult:
    """Run (or resume) the job's study until ``n_trials`` have finished or time runs out.

    Raises:
        PipelineError: no trial completed.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = journal_storage(journal)
    study = open_study(storage, study_name, config)
    finished = _resume(study, storage, study_name, config, report)
    space = {name: distribution(spec) for name, spec in config.search_space().items()}
    to_start = config.n_trials - finished
    deadline = time.monotonic() + config.timeout_seconds if config.timeout_seconds else None
    logger.info(
        "searching %s over %d trials (%d done before), up to %d at a time, pruning %s",
        sorted(space),
        config.n_trials,
        finished,
        parallel,
        "on" if config.pruning else "off",
    )
    running: dict[Any, optuna.trial.Trial] = {}
    try:
        while to_start > 0 or running:
            out_of_time = deadline is not None and time.monotonic() > deadline
            while to_start > 0 and len(running) < parallel and not out_of_time:
                trial = study.ask(space)
                running[runner.submit(trial.number, trial.params)] = trial
                to_start -= 1
            if out_of_time and to_start > 0:
                logger.info(
                    "time budget of %ss spent; %d trials not started",
                    config.timeout_seconds,
                    to_start,
                )
                to_start = 0
            for handle in runner.wait(list(running), timeout=0.5):
                trial = running.pop(handle)
                outcome = _finish(study, trial, runner, handle)
                report(outcome, _progress(study, config.n_trials))
    except BaseException:
        runner.cancel(list(running))
        raise
    return _result(study, journal, study_name, config)


def _finish(
    study: optuna.Study, trial: optuna.trial.Trial, runner: TrialRunner, handle: Any
) -> TrialReport:
    try:
        outcome = runner.result(handle)
    except Exception as exc:
        study.tell(trial, state=TrialState.FAIL)
        logger.warning("trial %d failed: %s", trial.number, exc)
        return TrialReport(trial.number, "failed", None, trial.params, None, error=str(exc))
    if outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_user_attr("best_iteration", outcome.best_iteration)
        study.tell(trial, outcome.value)
    logger.info(
        "trial %d %s: validation l1=%.4f in %.2fs",
        outcome.number,
        outcome.state,
        outcome.value if outcome.value is not None else float("nan"),
        outcome.seconds,
    )
    return outcome


def _resume(
    study: optuna.Study,
    storage: JournalStorage,
    study_name: str,
    config: TrainingConfig,
    report: Callable[[TrialReport, SearchProgress], None],
) -> int:
    """Mark trials a lost run left running as interrupted; re-report finished ones."""
    study_id = storage.get_study_id_from_name(study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        logger.warning("trial %d was interrupted; it will run again", trial.number)
    done = _finished_trials(study)
    progress = _progress(study, config.n_trials)
    for trial in done:
        report(_report_of(trial), progress)
    return len(done)


def _finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [
        t
        for t in study.get_trials(deepcopy=False, states=states)
        if not t.user_attrs.get(INTERRUPTED)
    ]


_STATE_NAMES = {
    TrialState.COMPLETE: "completed",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
}


def _report_of(trial: optuna.trial.FrozenTrial) -> TrialReport:
    values = trial.intermediate_values
    return TrialReport(
        number=trial.number,
        state=_STATE_NAMES[trial.state],
        value=trial.value if trial.state == TrialState.COMPLETE else None,
        params=trial.params,
        best_iteration=trial.user_attrs.get("best_iteration"),
        curve=[values[step] for step in sorted(values)],
    )


def _progress(study: optuna.Study, n_trials: int) -> SearchProgress:
    trials = _finished_trials(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value or 0.0) if complete else None
    return SearchProgress(
        n_trials=n_trials,
        completed=len(complete),
        pruned=sum(t.state == TrialState.PRUNED for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        best_value=best.value if best else None,
        best_params=best.params if best else None,
    )


def _result(
    study: optuna.Study, journal: Path, study_name: str, config: TrainingConfig
) -> SearchResult:
    progress = _progress(study, config.n_trials)
    complete = [t for t in _finished_trials(study) if t.state == TrialState.COMPLETE]
    if not complete:
        raise PipelineError(f"every trial failed or was pruned ({progress.finished} trials)")
    best = min(complete, key=lambda t: t.value if t.value is not None else float("inf"))
    logger.info("best trial %d: validation l1=%.4f with %s", best.number, best.value, best.params)
    return SearchResult(
        study_name=study_name,
        storage=str(journal),
        best_trial=best.number,
        best_value=float(best.value or 0.0),
        best_params=best.params,
        best_iteration=int(best.user_attrs["best_iteration"]),
        progress=progress,
        params={**config.lightgbm_params(), **best.params},
    )
