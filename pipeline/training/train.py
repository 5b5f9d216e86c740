"""The train stage: LightGBM boosters early-stopped on the validation part, then refitted
on training + validation rows with the rounds they found.

A model is one booster per objective, and forecasts their mean: by default a mean (L2)
and a median (L1) booster, an even blend that forecast better than either alone on the
real load sets of bench/forecast.py. The early-stopped fits also give the validation
part's out-of-sample forecasts: they set the anomaly threshold and, with the members'
refits at later origins (``pipeline.training.calibration``), calibrate the quantiles.
The target is the series' own or, where that validates better, relative to its level
(``pipeline.training.level``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from pipeline.config import RefitMethod, TrainingConfig
from pipeline.features.preprocess import PreparedData, PreparedFeatures
from pipeline.hyperparameters import NONNEGATIVE_OBJECTIVES
from pipeline.scoring.intervals import paired_quantiles
from pipeline.scoring.points import validation_scores
from pipeline.scoring.windows import window_maes
from pipeline.search_results import SearchResult
from pipeline.summaries import SearchSummary, TrainSummary
from pipeline.training.blend import Blend, Member
from pipeline.training.calibration import calibration_forecasts, rolls
from pipeline.training.callbacks import Callback, LiveMetrics, LiveScores, stop_when
from pipeline.training.fitters import FitRequest, Fitter, InProcessFitter, budget_plan
from pipeline.training.fitting import ROUND_ALIASES, Fit, booster_params
from pipeline.training.level import better_relative, level_of, relative_to
from pipeline.training.quantiles import calibrated_quantiles, quantile_params

logger = logging.getLogger(__name__)

Data = TypeVar("Data", bound=PreparedFeatures)

#: How a member's curves are named in the job's experiment; the first member's are not
#: prefixed (``validation_l1``), later ones are (``validation_median_l1``).
MEMBER_NAMES = {"regression": "mean", "regression_l1": "median"}
#: The entry of a model's ``params`` (shown by the registry and the experiment's run) that
#: names the feature its boosters' target is relative to; absent: the target itself.
TARGET_LEVEL_PARAM = "target_relative_to"


@dataclass(frozen=True, kw_only=True)
class TrainedModel(Blend):
    """The boosters of a model (a ``Blend``) and what their early-stopped fits learned."""

    params: dict[str, Any]
    best_iteration: int
    curve: dict[str, list[float]]
    validation_predictions: np.ndarray
    search: SearchSummary | None = None
    #: The blend's validation MAE and RMSE (the early-stopped boosters', out of sample).
    validation_scores: dict[str, float] = field(default_factory=dict)
    #: Coverage and width of each central interval per calibration window, in time order.
    calibration_windows: dict[str, list[float]] = field(default_factory=dict)
    #: The boosters the test part scored, when a final refit on every row replaced them
    #: (``pipeline.training.final_refit``); a later job is compared with these.
    scored: Blend | None = None

    def summary(self) -> TrainSummary:
        return TrainSummary.of(self)


def train(
    data: PreparedData,
    config: TrainingConfig,
    num_threads: int,
    should_stop: Callable[[], bool] | None = None,
    live: LiveMetrics | None = None,
) -> TrainedModel:
    """The train stage: one early-stopped fit and one refit per objective; ``num_threads``
    matches the CPUs the task holds.

    ``should_stop`` is asked every ``CANCEL_CHECK_SECONDS``; when it says yes (the job
    was cancelled) training stops with ``TrainingStopped``. Ray's own cancel can miss a
    task that was just starting, and a long training would then hold its CPU to the end.
    ``live`` hears the best validation scores every ``LIVE_METRICS_SECONDS``.
    """
    logger.info(
        "training LightGBM (%s) on %d rows x %d features, %d thread(s)",
        " + ".join(config.objectives()),
        len(data.train.y),
        len(data.feature_names),
        num_threads,
    )
    return trained_by(InProcessFitter(num_threads, watching(should_stop, live)), data, config)


def trained_by(fitter: Fitter[Data], data: Data, config: TrainingConfig) -> TrainedModel:
    """The job's model, its boosters trained by ``fitter`` (here or on Ray Train), on the
    target that validates better (``on_better_target``)."""
    fit = _fitting(member_plans(config), config, fitter, config.early_stopping_rounds)
    if config.time_budget_s is not None:  # the trial would spend time the budget did not plan
        return fit(data)
    return on_better_target(fit, data, fitter, signed=_signed(member_plans(config)))


def _fitting(
    plans: Sequence[MemberPlan],
    config: TrainingConfig,
    fitter: Fitter[Data],
    early_stopping_rounds: int,
    search: SearchSummary | None = None,
) -> Callable[..., TrainedModel]:
    """``assemble`` with these plans: ``fit(data)``, or with ``probe=True`` the members'
    early-stopped fits alone (no refit, no quantiles); with ``relative=True`` each plan's
    rounds are found again by early stopping (a search found them on the target itself)."""

    def fit(prepared: Data, probe: bool = False, relative: bool = False) -> TrainedModel:
        return assemble(
            prepared,
            [replace(plan, rounds=None) for plan in plans] if relative else plans,
            [] if probe else config.quantiles,
            early_stopping_rounds,
            fitter,
            search=search,
            quantile_boosters=config.quantile_boosters and not probe,
            time_budget_s=None if probe or search else config.time_budget_s,
            refit="none" if probe else config.refit,
        )

    return fit


def on_better_target(
    fit: Callable[..., TrainedModel],
    data: Data,
    fitter: Fitter[Data],
    judge: Callable[..., TrainedModel] | None = None,
    *,
    signed: bool = True,
) -> TrainedModel:
    """``fit(data)``, or ``fit`` on the target relative to the series' level when the
    early-stopped fits of ``judge``'s members (``probe=True``; default: ``fit``'s) validate
    better on it by the margin (``pipeline.training.level``); only where the fits run in
    this process, and only if every member's objective takes a ``signed`` target (a
    relative one is negative where the series is below its level). A search's model is
    judged by a plain job's members, as a plain job on the same data is: its own members
    were tuned on the target itself."""
    local = isinstance(data, PreparedData) and fitter.local_threads
    level = level_of(data) if signed and local and isinstance(data, PreparedData) else None
    model: TrainedModel | None = fit(data) if judge is None or level is None else None
    if level is None:
        assert model is not None
        return model
    assert isinstance(data, PreparedData)
    judge = judge or fit
    relative = relative_to(data, level)
    baseline = model or judge(data, probe=True)
    absolute = _window_maes(data, baseline.validation_predictions)
    probe = judge(relative, probe=True, relative=True)
    against = _window_maes(relative, probe.validation_predictions)
    kept = better_relative(absolute, against)
    logger.info(
        "the target relative to its level (%s): validation windows' MAE %s against %s absolute; %s",
        level.feature,
        ", ".join(f"{e:.4g}" for e in against),
        ", ".join(f"{e:.4g}" for e in absolute),
        "the model forecasts relative to it" if kept else "the absolute target stays",
    )
    if not kept:
        return model or fit(data)
    chosen: TrainedModel = fit(relative, relative=True)
    return replace(
        chosen,
        level=level,
        params={**chosen.params, TARGET_LEVEL_PARAM: level.feature},
        validation_predictions=chosen.validation_predictions + level.of(data.validation.X),
    )


def watching(should_stop: Callable[[], bool] | None, live: LiveMetrics | None) -> list[Callback]:
    """The callbacks of a fit the job follows: cancel checks and live scores."""
    callbacks = [stop_when(should_stop)] if should_stop is not None else []
    if live is not None:
        callbacks.append(LiveScores(live))
    return callbacks


@dataclass(frozen=True)
class MemberPlan:
    """How to train one member: its parameters, and its rounds if a search found them
    (else early stopping finds them)."""

    objective: str
    params: dict[str, Any]
    rounds: int | None = None
    #: Prefix of its curves' names after the first member's (default: by objective).
    label: str | None = None


def _signed(plans: list[MemberPlan]) -> bool:
    """Whether every plan's objective takes a target of either sign."""
    objectives = {plan.params.get("objective", plan.objective) for plan in plans}
    return not objectives & NONNEGATIVE_OBJECTIVES


def member_plans(config: TrainingConfig) -> list[MemberPlan]:
    """A plan per objective of the job, with its fixed hyperparameters."""
    return [
        MemberPlan(objective, {**config.lightgbm_params(), "objective": objective})
        for objective in config.objectives()
    ]


def search_plans(search: SearchResult) -> list[MemberPlan]:
    """A plan per objective of a search (its best trial's parameters and rounds, or a
    plain job's member when no trial beat the defaults: ``domain.comparison.verdict``),
    then a plain job's member per objective whose default-parameter trial completed: the
    model is the average of the search's model and a plain job's (a default kept counts
    twice, and ``assemble`` fits it once). On one validation split a search's choice did
    not carry to the test part: on the real sets its model alone could lose to the
    default's; averaged with it, and kept only when it wins over the validation windows,
    it does not (bench/forecast.py measures HPO against the default job)."""
    plans = [
        MemberPlan(objective, params, rounds)
        for objective, (params, rounds) in search.members.items()
    ]
    defaults = [
        MemberPlan(objective, params, rounds, f"default_{_member_name(objective)}_")
        for objective, (params, rounds) in search.defaults.items()
    ]
    beaten = [
        plan.objective
        for plan in defaults
        if search.members.get(plan.objective) != (plan.params, plan.rounds)
    ]
    logger.info(
        "the model averages the best trial of each objective (%s) with the default "
        "parameters' members (%s); trials beat the defaults by the margin for: %s",
        ", ".join(search.members),
        ", ".join(plan.objective for plan in defaults) or "none completed",
        ", ".join(beaten) or "none",
    )
    return plans + defaults


def assemble(
    data: Data,
    plans: Sequence[MemberPlan],
    quantiles: Sequence[float],
    early_stopping_rounds: int,
    fitter: Fitter[Data],
    search: SearchSummary | None = None,
    quantile_boosters: bool = False,
    time_budget_s: float | None = None,
    refit: RefitMethod = "full",
) -> TrainedModel:
    """Fit each member on the training part, then refit it on training + validation; the
    same for the quantile boosters if asked for. The quantiles are calibrated on the
    validation part's out-of-sample forecasts (``pipeline.training.calibration``).

    ``time_budget_s`` bounds the stage: each early-stopped fit stops at its share
    (``budget_plan``), where the fits run in this process.
    """
    requests = [_member_request(plan, early_stopping_rounds, refit) for plan in plans]
    alphas = paired_quantiles(quantiles) if quantiles and quantile_boosters else []
    requests += [
        FitRequest(params, early_stopping_rounds, refit=refit, max_rounds=_ceiling(params))
        for params in (quantile_params(plans[0].params, alpha) for alpha in alphas)
    ]
    # Residual quantiles are calibrated at rolling origins, refitted here when fits run here.
    calibrating = fitter.local_threads if quantiles and not alphas else None
    distinct = _distinct(requests)  # a search's member may be a plain job's: fitted once
    if time_budget_s is not None:
        rolling = calibrating is not None and rolls(data, refit)
        distinct = budget_plan(distinct, time_budget_s, refit, rolling, fitter)
    fitted = fitter(data, distinct)
    results = [fitted[position] for position in _positions(requests)]
    points, bounds = results[: len(plans)], results[len(plans) :]
    for plan, result in zip(plans, points, strict=True):
        logger.info(
            "%s: best iteration %d of %d, validation l1=%.4f",
            plan.objective,
            result.fit.best_iteration,
            result.fit.booster.current_iteration(),
            result.fit.curve["l1"][result.fit.best_iteration - 1],
        )
    fits = [result.fit for result in points]
    validation = np.mean(
        [f.booster.predict(data.validation.X, num_iteration=f.best_iteration) for f in fits],
        axis=0,
    )
    members = [
        Member(plan.objective, result.refitted, result.rounds)
        for plan, result in zip(plans, points, strict=True)
    ]
    scores = validation_scores(data.validation.y, validation)
    logger.info(
        "refitted on %d rows (train + validation): %s; blended validation l1=%.4f",
        data.train_rows + len(data.validation.y),
        ", ".join(f"{m.objective} {m.rounds} rounds" for m in members),
        scores["best_mae"],
    )
    calibration_point = validation
    if calibrating is not None:
        ceilings = [r.max_rounds for r in requests[: len(plans)]]
        calibration_point = calibration_forecasts(
            data, fits, validation, calibrating, refit, ceilings
        )
    calibrated = calibrated_quantiles(
        data, quantiles, calibration_point, dict(zip(alphas, bounds, strict=True))
    )
    return TrainedModel(
        members=tuple(members),
        params=_model_params(fits),
        best_iteration=fits[0].best_iteration,
        curve=_curves(plans, fits),
        validation_predictions=validation,
        quantile_members=calibrated.members,
        calibration=calibrated.calibration,
        search=search,
        validation_scores=scores,
        calibration_windows=calibrated.windows,
    )


def _window_maes(data: PreparedData, predicted: np.ndarray) -> list[float]:
    validation = data.validation
    return window_maes(predicted, validation.y, validation.timestamps, validation.normal)


def _distinct(requests: Sequence[FitRequest]) -> list[FitRequest]:
    return [r for i, r in enumerate(requests) if r not in requests[:i]]


def _positions(requests: Sequence[FitRequest]) -> list[int]:
    """Where each request is among ``_distinct(requests)``."""
    distinct = _distinct(requests)
    return [distinct.index(r) for r in requests]


def _member_request(plan: MemberPlan, early_stopping_rounds: int, refit: RefitMethod) -> FitRequest:
    ceiling = _ceiling(plan.params)
    if plan.rounds is None:
        return FitRequest(plan.params, early_stopping_rounds, refit=refit, max_rounds=ceiling)
    kept = {k: v for k, v in plan.params.items() if k not in ROUND_ALIASES}
    fixed = {**kept, "n_estimators": plan.rounds}  # the rounds a search found
    return FitRequest(fixed, 0, refit=refit, max_rounds=ceiling)


def _ceiling(params: dict[str, Any]) -> int:
    """The rounds ``params`` allow (``n_estimators``): a refit's grow up to them."""
    return booster_params(params, 1)[1]


def retrain_best(
    data: PreparedData, search: SearchResult, config: TrainingConfig, num_threads: int
) -> TrainedModel:
    """The train stage after a search: each member with its trial's parameters and rounds
    (``search_plans``), refitted on training + validation rows."""
    logger.info(
        "retraining the best trial of each objective (%s) on train + validation",
        ", ".join(search.members),
    )
    return retrained_by(InProcessFitter(num_threads), data, search, config)


def retrained_by(
    fitter: Fitter[Data], data: Data, search: SearchResult, config: TrainingConfig
) -> TrainedModel:
    """The model after a search, its boosters trained by ``fitter`` (``search_plans``),
    on the target that validates better (``on_better_target``)."""
    plans = search_plans(search)
    fit = _fitting(plans, config, fitter, search.early_stopping_rounds, search.summary())
    members = member_plans(config)
    judge = _fitting(members, config, fitter, config.early_stopping_rounds)
    return on_better_target(fit, data, fitter, judge, signed=_signed(plans + members))


def _model_params(fits: Sequence[Fit]) -> dict[str, Any]:
    """The first member's parameters; with several members, ``objective`` lists theirs."""
    params = dict(fits[0].params)
    if len(fits) > 1:
        params["objective"] = [f.params["objective"] for f in fits]
    return params


def _member_name(objective: str) -> str:
    return MEMBER_NAMES.get(objective, objective)


def _curves(plans: Sequence[MemberPlan], fits: Sequence[Fit]) -> dict[str, list[float]]:
    curves: dict[str, list[float]] = {}
    for index, (plan, fitted) in enumerate(zip(plans, fits, strict=True)):
        prefix = "" if index == 0 else plan.label or f"{_member_name(plan.objective)}_"
        curves.update({f"{prefix}{name}": values for name, values in fitted.curve.items()})
    return curves
