"""What a trial needs of the trials before it to prune as Optuna's median pruner does.

Per reported step, the middle values of the completed trials' curves (a window wide enough
for the trials running beside it, which may finish while it trains) and how many values
lie below and above the window. Its size grows with the steps and the trials at once, not
with the trials done: a search used to send each trial every completed trial, O(n²) in
all for a long search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MedianRule:
    """Optuna's ``MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)``."""

    startup: int
    warmup: int


@dataclass(frozen=True)
class StepValues:
    """The completed trials' values at one step: the sorted middle ``window`` and how
    many values lie below and above it."""

    below: int
    window: tuple[float, ...]
    above: int

    def median(self, extra: Sequence[float] = ()) -> float:
        """The median of the values and ``extra`` (as many as the window was made for):
        values outside the window stand at its edges, which moves no middle value."""
        edges = [self.window[0]] * self.below + [self.window[-1]] * self.above
        values = np.asarray([*edges, *self.window, *extra], dtype=float)
        return float(np.percentile(values, 50))


def step_values(values: Sequence[float], extra: int) -> StepValues:
    """The summary of one step's values that gives the exact median with up to ``extra``
    more values."""
    ordered = sorted(values)
    middle = (len(ordered) - 1) // 2
    low = max(0, middle - extra - 1)
    high = min(len(ordered), middle + extra + 3)
    return StepValues(low, tuple(ordered[low:high]), len(ordered) - high)


@dataclass(frozen=True)
class PruningHistory:
    """The completed trials as the median pruner reads them."""

    completed: int
    steps: Mapping[int, StepValues]

    @classmethod
    def of(cls, curves: Sequence[Mapping[int, float]], peers: int) -> PruningHistory:
        """The history of completed trials' intermediate values (``curves``), for a trial
        that may learn of up to ``peers`` more trials while it trains."""
        by_step: dict[int, list[float]] = {}
        for curve in curves:
            for step, value in curve.items():
                if not math.isnan(value):
                    by_step.setdefault(step, []).append(value)
        steps = {step: step_values(values, peers) for step, values in by_step.items()}
        return cls(len(curves), steps)


EMPTY = PruningHistory(0, {})


def should_prune(
    rule: MedianRule | None,
    history: PruningHistory,
    peers: Sequence[Mapping[int, float]],
    reported: Mapping[int, float],
    step: int,
) -> bool:
    """Whether a trial that has ``reported`` these values (up to ``step``) is pruned, as
    Optuna's median pruner decides (minimising) against the completed trials in
    ``history`` and the completed ``peers``' curves."""
    if rule is None:
        return False
    completed = history.completed + len(peers)
    if completed == 0 or completed < rule.startup or step < rule.warmup:
        return False
    best = min((v for v in reported.values() if not math.isnan(v)), default=math.nan)
    if math.isnan(best):
        return True
    extra = [p[step] for p in peers if step in p and not math.isnan(p[step])]
    summary = history.steps.get(step)
    if summary is not None:
        median = summary.median(extra)
    elif extra:
        median = float(np.percentile(extra, 50))
    else:
        return False
    return best > median
