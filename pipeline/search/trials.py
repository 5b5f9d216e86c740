"""One trial of a search: LightGBM with the trial's parameters, judging its validation L1
by Optuna's median rule as it trains (``pipeline.search.pruning``; ``pipeline.search.hpo`` runs the
search around it).
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
from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData
from pipeline.hyperparameters import HyperparameterSpec
from pipeline.search.pruning import EMPTY, MedianRule, PruningHistory, should_prune
from pipeline.search.window_errors import window_errors
from pipeline.search_results import TrialReport
from pipeline.training.fitting import BinnedData, booster_params, fit

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


def median_rule(config: TrainingConfig) -> MedianRule | None:
    """The job's median pruning (None when it turned pruning off)."""
    if not config.pruning:
        return None
    startup = min(5, max(1, config.n_trials // 4))
    rounds = booster_params(config.lightgbm_params(), 1)[1]
    warmup = max(report_interval(config), min(rounds // 4, MAX_WARMUP_ROUNDS))
    return MedianRule(startup, warmup)


def pruner(config: TrainingConfig) -> optuna.pruners.BasePruner:
    """The job's median pruner as Optuna's (none when it turned pruning off)."""
    rule = median_rule(config)
    if rule is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=rule.startup, n_warmup_steps=rule.warmup)


def report_interval(config: TrainingConfig) -> int:
    """Rounds between two reports to the pruner."""
    rounds = booster_params(config.lightgbm_params(), 1)[1]
    return max(5, min(rounds // REPORTS_PER_TRIAL, MAX_REPORT_INTERVAL))


def run_trial(
    data: PreparedData,
    config: TrainingConfig,
    number: int,
    params: dict[str, Any],
    completed: PruningHistory = EMPTY,
    finished_peers: Callable[[], list[TrialReport]] | None = None,
    binned: BinnedData | None = None,
) -> TrialReport:
    """Train one trial (in a one-CPU task), pruned against the ``completed`` trials (what
    the median pruner needs of them: ``PruningHistory``).

    ``finished_peers`` gives the reports of trials that were running when this one started
    and have finished since; asked before each pruning decision, it lets a trial prune
    against what a sequential search would have known (without it, two trials at a time
    pruned about a quarter fewer). ``binned`` is the data already binned by this worker.
    """
    started = time.perf_counter()
    rule = median_rule(config)
    every = report_interval(config)
    intermediate: dict[int, float] = {}
    peers: list[dict[int, float]] = []

    def report(env: lgb.callback.CallbackEnv) -> None:
        step = env.iteration + 1
        if step % every:
            return
        value = next(r[2] for r in env.evaluation_result_list or [] if r[1] == "l1")
        intermediate[step] = value
        if finished_peers is not None:
            done = [peer for peer in finished_peers() if peer.state is ExperimentStatus.COMPLETED]
            peers.extend(peer.intermediate for peer in done)
        if should_prune(rule, completed, peers, intermediate, step):
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
        window_errors=window_errors(data, model.booster, model.best_iteration),
    )
