"""One trial of a search: LightGBM with the trial's parameters, reporting its validation L1
to Optuna's median pruner as it trains (``pipeline.hpo`` runs the search around it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from domain.jobs import ExperimentStatus
from pipeline.config import HyperparameterSpec, TrainingConfig
from pipeline.preprocess import PreparedData
from pipeline.search_results import TrialReport
from pipeline.train import BinnedData, booster_params, fit

#: Trials report their validation L1 to the pruner about this many times, and at least
#: every ``MAX_REPORT_INTERVAL`` rounds: early stopping ends most trials long before the
#: ``n_estimators`` ceiling, so reports spaced by the ceiling would come too late.
REPORTS_PER_TRIAL = 10
MAX_REPORT_INTERVAL = 25
#: Rounds before the pruner judges a trial, at most.
MAX_WARMUP_ROUNDS = 100


def distribution(spec: HyperparameterSpec) -> BaseDistribution:
    if spec.type == "categorical":
        return CategoricalDistribution(spec.choices or [])
    assert spec.low is not None
    assert spec.high is not None
    if spec.type == "int":
        return IntDistribution(int(spec.low), int(spec.high))
    return FloatDistribution(spec.low, spec.high, log=spec.type == "loguniform")


def pruner(config: TrainingConfig) -> optuna.pruners.BasePruner:
    """The job's median pruner (none when it turned pruning off)."""
    if not config.pruning:
        return optuna.pruners.NopPruner()
    startup = min(5, max(1, config.n_trials // 4))
    rounds = booster_params(config.lightgbm_params(), 1)[1]
    warmup = max(report_interval(config), min(rounds // 4, MAX_WARMUP_ROUNDS))
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)


def report_interval(config: TrainingConfig) -> int:
    """Rounds between two reports to the pruner."""
    rounds = booster_params(config.lightgbm_params(), 1)[1]
    return max(5, min(rounds // REPORTS_PER_TRIAL, MAX_REPORT_INTERVAL))


def run_trial(
    data: PreparedData,
    config: TrainingConfig,
    number: int,
    params: dict[str, Any],
    completed: list[optuna.trial.FrozenTrial],
    finished_peers: Callable[[], list[TrialReport]] | None = None,
    binned: BinnedData | None = None,
) -> TrialReport:
    """Train one trial (in a one-CPU task), pruned against the ``completed`` trials.

    ``finished_peers`` gives the reports of trials that were running when this one started
    and have finished since; asked before each pruning decision, it lets a trial prune
    against what a sequential search would have known (without it, two trials at a time
    pruned about a quarter fewer). ``binned`` is the data already binned by this worker.
    """
    started = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {name: distribution(spec) for name, spec in config.search_space().items()}
    local = optuna.create_study(direction="minimize", pruner=pruner(config))
    local.add_trials(completed)
    local.enqueue_trial(params)
    trial = local.ask(space)
    every = report_interval(config)
    intermediate: dict[int, float] = {}

    def report(env: lgb.callback.CallbackEnv) -> None:
        step = env.iteration + 1
        if step % every:
            return
        value = next(r[2] for r in env.evaluation_result_list or [] if r[1] == "l1")
        intermediate[step] = value
        trial.report(value, step)
        if finished_peers is not None:
            done = [peer for peer in finished_peers() if peer.state is ExperimentStatus.COMPLETED]
            local.add_trials([_frozen(peer, space) for peer in done])
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at round {step}")

    merged = {**config.lightgbm_params(), **params}
    try:
        model = fit(data, merged, config.early_stopping_rounds, 1, [report], binned)
    except optuna.TrialPruned:
        return TrialReport(
            number,
            ExperimentStatus.PRUNED,
            intermediate[max(intermediate)],
            params,
            None,
            seconds=time.perf_counter() - started,
            intermediate=intermediate,
        )
    curve = model.curve["l1"]
    return TrialReport(
        number=number,
        state=ExperimentStatus.COMPLETED,
        value=curve[model.best_iteration - 1],
        params=params,
        best_iteration=model.best_iteration,
        curve=curve,
        seconds=time.perf_counter() - started,
        intermediate=intermediate,
    )


def _frozen(report: TrialReport, space: dict[str, BaseDistribution]) -> optuna.trial.FrozenTrial:
    """A completed trial's report as the pruner reads it."""
    return optuna.trial.create_trial(
        value=report.value,
        params=report.params,
        distributions={name: space[name] for name in report.params},
        intermediate_values=report.intermediate,
    )
