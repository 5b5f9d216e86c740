"""A trial prunes from a compact history exactly as Optuna's median pruner does from every
completed trial, and that history stays the same size however many trials completed."""

from __future__ import annotations

import pickle

import numpy as np
import optuna
from optuna.distributions import FloatDistribution

from pipeline.search.pruning import MedianRule, PruningHistory, should_prune

STEPS = list(range(5, 105, 5))


def curve(rng: np.random.Generator, length: int | None = None) -> dict[int, float]:
    """A falling validation curve, cut short as early stopping would."""
    steps = STEPS[: length or int(rng.integers(1, len(STEPS) + 1))]
    start = rng.uniform(1, 3)
    return {s: float(start * np.exp(-s / rng.uniform(20, 200))) for s in steps}


def frozen(values: dict[int, float]) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        value=min(values.values()),
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        intermediate_values=values,
    )


def test_the_decisions_are_optunas_median_pruners() -> None:
    rng = np.random.default_rng(7)
    decisions = set()
    for case in range(300):
        rule = MedianRule(startup=int(rng.integers(1, 6)), warmup=int(rng.choice(STEPS[:6])))
        completed = [curve(rng) for _ in range(int(rng.integers(0, 40)))]
        peers = [curve(rng) for _ in range(int(rng.integers(0, 3)))]
        mine = curve(rng, length=len(STEPS))
        history = PruningHistory.of(completed, peers=len(peers))

        study = optuna.create_study(
            pruner=optuna.pruners.MedianPruner(rule.startup, rule.warmup),
            sampler=optuna.samplers.RandomSampler(seed=case),
        )
        study.add_trials([frozen(c) for c in completed + peers])
        trial = study.ask({"x": FloatDistribution(0, 1)})
        reported: dict[int, float] = {}
        for step, value in mine.items():
            reported[step] = value
            trial.report(value, step)
            expected = trial.should_prune()
            assert should_prune(rule, history, peers, reported, step) == expected, (case, step)
            decisions.add(expected)
            if expected:
                break
    assert decisions == {True, False}


def test_the_history_a_trial_receives_does_not_grow_with_the_trials_done() -> None:
    rng = np.random.default_rng(3)
    curves = [curve(rng, length=len(STEPS)) for _ in range(2000)]
    sizes = {n: len(pickle.dumps(PruningHistory.of(curves[:n], peers=2))) for n in (50, 500, 2000)}
    assert sizes[2000] <= sizes[50] * 1.05, sizes
    every_trial = len(pickle.dumps([frozen(c) for c in curves[:500]]))
    assert sizes[500] * 50 < every_trial  # what each trial used to receive
