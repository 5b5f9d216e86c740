"""What a finished search keeps for each member objective: its best trial's parameters,
unless that trial did not beat its objective's default trial over the validation windows
by more than chance, and then the defaults a plain job trains with. The default trials
(``starting_points``) are where a search starts, once per searched objective.

A finished trial carries its number in the job (``NUMBER``) and its errors per validation
window (``WINDOW_ERRORS``) as user attributes in the job's journal; the choice reads them.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna

from domain.comparison import verdict
from pipeline.config import TrainingConfig
from pipeline.hyperparameters import DEFAULT_HYPERPARAMETERS, canonical

logger = logging.getLogger(__name__)

#: The user attribute holding a trial's number in the job (its name in logs and experiments).
NUMBER = "number"
#: The user attribute that holds a completed trial's errors per validation window.
WINDOW_ERRORS = "window_errors"
#: The user attribute that marks a default trial (``starting_points``).
DEFAULT_TRIAL = "default_trial"
#: LightGBM's own defaults of the parameters the service leaves to it, where a search's
#: default trial starts them (its others are ``DEFAULT_HYPERPARAMETERS``).
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "max_depth": -1,
    "min_split_gain": 0.0,
    "min_child_weight": 1e-3,
    "max_bin": 255,
    "reg_lambda": 0.0,
    "reg_alpha": 0.0,
}


def starting_points(config: TrainingConfig) -> list[dict[str, Any]]:
    """The first trials: the service's defaults (moved into the searched ranges), once per
    searched objective, so a search starts from what a plain job would train. They are
    never pruned: every other trial of their objective is judged against them. A parameter
    without a default in its range (a seed, a categorical without it) is the sampler's.
    Each is marked (``DEFAULT_TRIAL``) when enqueued: a sampled parameter makes it no
    point of this list."""
    defaults = {**LIGHTGBM_DEFAULTS, **DEFAULT_HYPERPARAMETERS}
    point: dict[str, Any] = {}
    objectives: list[Any] = [None]
    for name, spec in config.search_space().items():
        default = defaults.get(canonical(name))
        if spec.type == "categorical":
            if name == "objective":
                objectives = list(spec.choices or [])
            elif default in (spec.choices or []):
                point[name] = default
        elif default is not None and spec.low is not None and spec.high is not None:
            value = min(max(float(default), spec.low), spec.high)
            point[name] = round(value) if spec.type == "int" else value
    points = [point if o is None else {**point, "objective": o} for o in objectives]
    return [p for p in points if p]


def is_default_trial(
    trial: optuna.trial.FrozenTrial | optuna.trial.Trial, starts: list[dict[str, Any]]
) -> bool:
    """Whether ``trial`` is a default trial: marked so, or (journals written before the
    mark) one of the ``starts``."""
    return bool(trial.user_attrs.get(DEFAULT_TRIAL)) or trial.params in starts


def trial_objective(config: TrainingConfig, params: dict[str, Any]) -> str:
    """The objective a trial trained with: searched, fixed by the job, or LightGBM's L2."""
    fixed = config.lightgbm_params().get("objective", "regression")
    return str(params.get("objective", fixed))


def member_choices(
    config: TrainingConfig, complete: list[optuna.trial.FrozenTrial]
) -> dict[str, tuple[dict[str, Any], int | None]]:
    """Per member objective, the parameters and rounds of its best completed trial, or
    the default parameters (``default_member``) when that trial did not beat its
    objective's default trial over the validation windows.

    A searched objective makes a member of every choice that completed a trial (a choice
    whose trials all failed or were pruned is left out); otherwise the members are the
    job's objectives, and one without trials of its own takes the best trial's parameters
    (its rounds None: the retrain early-stops it).
    """
    ranked = sorted(complete, key=lambda t: t.value if t.value is not None else float("inf"))
    searched = config.search_space().get("objective")
    if searched is not None and searched.type == "categorical":
        tried = {trial_objective(config, t.params) for t in ranked}
        objectives: tuple[str, ...] = tuple(
            str(c) for c in searched.choices or [] if str(c) in tried
        )
    else:
        objectives = config.objectives()
    starts = _default_trials(config, complete)
    members: dict[str, tuple[dict[str, Any], int | None]] = {}
    for objective in objectives:
        own = [t for t in ranked if trial_objective(config, t.params) == objective]
        chosen = own[0] if own else ranked[0]
        # An objective without trials borrows the best trial's parameters only if they
        # beat their own objective's default trial.
        judged_by = objective if own else trial_objective(config, chosen.params)
        start = starts.get(judged_by)
        if start is not None and (chosen is start or not _won(judged_by, chosen, start)):
            members[objective] = default_member(config, objective)
            continue
        params = {**config.lightgbm_params(), **chosen.params, "objective": objective}
        rounds = int(chosen.user_attrs["best_iteration"]) if own else None
        members[objective] = (params, rounds)
    return members


def default_choices(
    config: TrainingConfig, complete: list[optuna.trial.FrozenTrial]
) -> dict[str, tuple[dict[str, Any], int | None]]:
    """Per objective whose default-parameter trial (``starting_points``) completed, the
    member a plain job trains (``default_member``); with the objective not searched, each
    of the job's objectives once one default trial completed (the ones without trials of
    their own borrowed the searched one's)."""
    completed = _default_trials(config, complete)
    searched = config.search_space().get("objective")
    objectives = list(completed) if searched is not None or not completed else config.objectives()
    return {objective: default_member(config, objective) for objective in objectives}


def default_member(config: TrainingConfig, objective: str) -> tuple[dict[str, Any], None]:
    """The parameters a plain job trains ``objective`` with, its rounds left to early
    stopping as a plain job's are: the default trial itself may differ (a default outside
    a searched range, as ``reg_lambda`` 0, starts at the range's edge), and on a small
    real set that edge alone moved the test error by more than a search usually gains
    (bench/forecast.py)."""
    return {**config.lightgbm_params(), "objective": objective}, None


def _default_trials(
    config: TrainingConfig, complete: list[optuna.trial.FrozenTrial]
) -> dict[str, optuna.trial.FrozenTrial]:
    starts = starting_points(config)
    return {
        trial_objective(config, trial.params): trial
        for trial in complete
        if is_default_trial(trial, starts)
    }


def _won(objective: str, best: optuna.trial.FrozenTrial, default: optuna.trial.FrozenTrial) -> bool:
    """Whether ``best`` beat the ``default`` trial over the validation windows by more than
    chance (``domain.comparison.verdict``); trials scored on one split (journals of an
    earlier version) keep the best."""
    judged = verdict(
        best.user_attrs.get(WINDOW_ERRORS, []), default.user_attrs.get(WINDOW_ERRORS, [])
    )
    if judged is None:
        return True
    logger.info(
        "%s: trial %s against the defaults over the validation windows: %+.2f %% "
        "(margin %.2f %%): %s",
        objective,
        best.user_attrs[NUMBER],
        100 * judged.gain,
        100 * judged.margin,
        "the trial's parameters kept" if judged.won else "the defaults kept",
    )
    return judged.won
