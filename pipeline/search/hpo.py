"""Distributed hyperparameter search: an Optuna ask/tell loop that runs trials as Ray tasks.

The coordinator (the ``search`` stage, a task holding no CPU) asks a seeded TPE sampler for
parameters and dispatches each trial as a one-CPU task named ``trial:<job_id>:<number>`` to
a warm worker; every trial receives the same prepared data from the object store.

Sampling and pruning run on in-memory studies, so a trial costs no shared-file I/O while it
trains: each trial prunes by Optuna's median rule against a snapshot of the trials
completed when it started, sent as what that rule reads of them (``pipeline.search.pruning``: the
middle values at each step, a size that does not grow with the trials). A finished trial
is appended to the job's journal file in one write; a search interrupted by a restart
reloads the journal and runs only what is missing. Which trials' parameters the model
keeps is ``pipeline.search.members``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from domain.errors import PipelineError, TrainingStopped
from domain.jobs import ExperimentStatus
from pipeline.config import TrainingConfig
from pipeline.search.members import (
    DEFAULT_TRIAL,
    NUMBER,
    WINDOW_ERRORS,
    default_choices,
    is_default_trial,
    member_choices,
    starting_points,
    trial_objective,
)
from pipeline.search.pruning import EMPTY, PruningHistory
from pipeline.search.runner import TrialPreempted, TrialRunner
from pipeline.search.trials import distribution, pruner
from pipeline.search_results import SearchProgress, SearchResult, TrialReport

logger = logging.getLogger(__name__)

SAMPLER_SEED = 42
#: How often a search asks whether its job was cancelled.
STOP_CHECK_SECONDS = 2.0


@functools.lru_cache(maxsize=8)
def journal_storage(journal: Path) -> JournalStorage:
    """One storage object per journal and process: after the first read it reads only
    the journal's new entries, where a fresh one would replay the whole file."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(journal)))


def open_study(
    storage: optuna.storages.BaseStorage, name: str, config: TrainingConfig, seed: int = 0
) -> optuna.Study:
    """Create the job's study, or load it to resume (``seed``: added to the sampler's)."""
    return optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED + seed),
        pruner=pruner(config),
        direction="minimize",
        load_if_exists=True,
    )


def search(
    config: TrainingConfig,
    journal: Path,
    study_name: str,
    parallel: Callable[[], int],
    runner: TrialRunner,
    report: Callable[[TrialReport, SearchProgress], None],
    should_stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Run (or resume) the job's study until ``n_trials`` have finished or time runs out.

    ``parallel`` says how many trials may run at once; it is asked whenever trials could
    start, so a search widens and narrows with the CPUs its job holds. A trial the runner
    says was preempted runs again, with its number and parameters, when a CPU frees.

    ``should_stop`` is asked every ``STOP_CHECK_SECONDS``; when the job was cancelled the
    running trials are cancelled and the search ends.

    Raises:
        PipelineError: no trial completed.
        TrainingStopped: the job was cancelled.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    durable = open_study(journal_storage(journal), study_name, config)
    # A resumed search's sampler draws anew: seeded as the first, it would replay its draws.
    done = len(durable.trials)
    live = open_study(optuna.storages.InMemoryStorage(), study_name, config, seed=done)
    numbers = _resume(durable, live, config, report)
    space = {name: distribution(spec) for name, spec in config.search_space().items()}
    starts = starting_points(config)
    finished = [t for t in durable.trials if is_default_trial(t, starts)]
    for point in starts:  # those a lost search had not finished run (again)
        objective = point.get("objective")
        if not any(t.params.get("objective") == objective for t in finished):
            live.enqueue_trial(point, user_attrs={DEFAULT_TRIAL: True})
    to_start = config.n_trials - len(durable.trials)
    next_number = max(numbers, default=-1) + 1
    deadline = time.monotonic() + config.timeout_seconds if config.timeout_seconds else None
    logger.info(
        "searching %s over %d trials (%d done before), pruning %s",
        sorted(space),
        config.n_trials,
        len(durable.trials),
        "on" if config.pruning else "off",
    )
    widest = 0
    running: dict[Any, tuple[int, optuna.trial.Trial]] = {}
    #: Trials whose slot was taken back: they run again, as they were, when one frees.
    preempted: list[tuple[int, optuna.trial.Trial]] = []
    checked = time.monotonic()
    try:
        while to_start > 0 or running or preempted:
            if should_stop is not None and time.monotonic() - checked > STOP_CHECK_SECONDS:
                checked = time.monotonic()
                if should_stop():
                    raise TrainingStopped("search stopped: the job was cancelled")
            out_of_time = deadline is not None and time.monotonic() > deadline
            if out_of_time and (to_start > 0 or preempted):
                logger.info("time budget spent; %d trials not started", to_start + len(preempted))
                to_start, preempted = 0, []
            slots = parallel() if to_start > 0 or preempted else 0
            if slots > widest:
                widest = slots
                logger.info("running up to %d trials at once", slots)
            while (to_start > 0 or preempted) and len(running) < slots:
                if preempted:
                    number, trial = preempted.pop(0)
                else:
                    number, trial = next_number, live.ask(space)
                    next_number += 1
                    to_start -= 1
                history, peers = _pruning_basis(config, live, trial, starts, running)
                handle = runner.submit(number, trial.params, history, peers)
                running[handle] = (number, trial)
            for handle in runner.wait(list(running), timeout=0.5):
                number, trial = running.pop(handle)
                try:
                    outcome = _finish(live, durable, trial, number, runner, handle)
                except TrialPreempted as exc:
                    logger.info("trial %d stopped: %s; it runs again later", number, exc)
                    preempted.append((number, trial))
                    continue
                report(outcome, _progress(durable, config.n_trials))
    except BaseException:
        runner.cancel(list(running))
        raise
    return _result(durable, journal, study_name, config)


def _pruning_basis(
    config: TrainingConfig,
    live: optuna.Study,
    trial: optuna.trial.Trial,
    starts: list[dict[str, Any]],
    running: dict[Any, tuple[int, optuna.trial.Trial]],
) -> tuple[PruningHistory, list[Any]]:
    """What a trial prunes against: the completed and running trials of its objective
    (each objective is a member: its trials compete among themselves);
    nothing for a default trial, the verdicts' baseline, which runs to its end."""
    if is_default_trial(trial, starts):
        return EMPTY, []
    objective = trial_objective(config, trial.params)
    completed = [
        t
        for t in live.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if trial_objective(config, t.params) == objective
    ]
    peers = [
        handle
        for handle, (_, peer) in running.items()
        if trial_objective(config, peer.params) == objective
    ]
    history = PruningHistory.of([t.intermediate_values for t in completed], peers=len(peers))
    return history, peers


def _finish(
    live: optuna.Study,
    durable: optuna.Study,
    trial: optuna.trial.Trial,
    number: int,
    runner: TrialRunner,
    handle: Any,
) -> TrialReport:
    """Tell the live study how a trial ended and append it to the journal (one write)."""
    trial.set_user_attr(NUMBER, number)
    try:
        outcome = runner.result(handle)
    except TrialPreempted:
        raise
    except Exception as exc:
        live.tell(trial, state=TrialState.FAIL)
        logger.warning("trial %d failed: %s", number, exc)
        outcome = TrialReport(
            number, ExperimentStatus.FAILED, None, trial.params, None, error=str(exc)
        )
    else:
        for step, value in outcome.intermediate.items():
            trial.report(value, step)
        if outcome.state is ExperimentStatus.PRUNED:
            live.tell(trial, state=TrialState.PRUNED)
        else:
            trial.set_user_attr("best_iteration", outcome.best_iteration)
            trial.set_user_attr(WINDOW_ERRORS, outcome.window_errors)
            live.tell(trial, outcome.value)
        logger.info(
            "trial %d %s: validation l1=%.4f in %.2fs",
            number,
            outcome.state,
            outcome.value if outcome.value is not None else float("nan"),
            outcome.seconds,
        )
    durable.add_trial(live.get_trials(deepcopy=False)[trial.number])
    return outcome


def _resume(
    durable: optuna.Study,
    live: optuna.Study,
    config: TrainingConfig,
    report: Callable[[TrialReport, SearchProgress], None],
) -> list[int]:
    """Load the journal's finished trials into the live study and re-report them (the
    orchestrator records each once). Trials that were running when the search was lost
    never reached the journal, so they simply run again."""
    done = durable.get_trials(deepcopy=False)
    live.add_trials(done)
    progress = _progress(durable, config.n_trials)
    for trial in done:
        report(_report_of(trial), progress)
    return [int(t.user_attrs[NUMBER]) for t in done]


_STATUS = {
    TrialState.COMPLETE: ExperimentStatus.COMPLETED,
    TrialState.PRUNED: ExperimentStatus.PRUNED,
    TrialState.FAIL: ExperimentStatus.FAILED,
}


def _report_of(trial: optuna.trial.FrozenTrial) -> TrialReport:
    return TrialReport(
        number=int(trial.user_attrs[NUMBER]),
        state=_STATUS[trial.state],
        value=trial.value if trial.state == TrialState.COMPLETE else None,
        params=trial.params,
        best_iteration=trial.user_attrs.get("best_iteration"),
        intermediate=dict(trial.intermediate_values),
        window_errors=list(trial.user_attrs.get(WINDOW_ERRORS, [])),
    )


def _progress(study: optuna.Study, n_trials: int) -> SearchProgress:
    trials = study.get_trials(deepcopy=False)
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
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise PipelineError(f"every trial failed or was pruned ({progress.finished} trials)")
    best = min(complete, key=lambda t: t.value if t.value is not None else float("inf"))
    logger.info(
        "best trial %s: validation l1=%.4f with %s",
        best.user_attrs[NUMBER],
        best.value,
        best.params,
    )
    return SearchResult(
        study_name=study_name,
        storage=str(journal),
        best_trial=int(best.user_attrs[NUMBER]),
        best_value=float(best.value or 0.0),
        best_params=best.params,
        best_iteration=int(best.user_attrs["best_iteration"]),
        progress=progress,
        members=member_choices(config, complete),
        defaults=default_choices(config, complete),
        early_stopping_rounds=config.early_stopping_rounds,
    )
