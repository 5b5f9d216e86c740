"""Side-by-side comparison of experiments: parameters, final metrics, one aligned curve,
and which won over the validation windows (the rule a search keeps its defaults by).

Pure functions over plain values, so the API, the CLI and the search judge alike.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scipy.stats import t as student_t

Goal = Literal["min", "max"]

#: Metrics where higher is better; error metrics (mae, rmse, l1, ...) are lower-is-better.
HIGHER_IS_BETTER = frozenset(
    {
        "r2",
        "precision",
        "recall",
        "f1",
        "auc",
        "accuracy",
        *(
            f"{kind}_{score}"
            for kind in ("event", "point")
            for score in ("precision", "recall", "f1")
        ),
        "nab_score",
    }
)
#: A trial's mean absolute error on each window of the validation part (step: the window).
WINDOW_METRIC = "window_mae"
#: Metrics that describe a run rather than rank it (a window's error alone ranks nothing:
#: ``compare_windows`` judges them together).
NOT_RANKED = frozenset({"anomaly_rate", "events_per_week", "best_iteration", WINDOW_METRIC})
#: How sure a gain over the windows must be to count as a win (a one-sided paired t test).
CONFIDENCE = 0.95


def goal_of(metric: str) -> Goal | None:
    """Whether a metric is minimised or maximised (None: it is not a score)."""
    if metric in NOT_RANKED:
        return None
    return "max" if metric in HIGHER_IS_BETTER else "min"


@dataclass(frozen=True)
class ParamRow:
    name: str
    values: dict[str, Any]
    differs: bool


@dataclass(frozen=True)
class MetricRow:
    name: str
    values: dict[str, float | None]
    goal: Goal | None
    best: list[str]


@dataclass(frozen=True)
class AlignedCurve:
    """Values per experiment at the union of steps (None where one has no point)."""

    metric: str
    steps: list[int]
    values: dict[str, list[float | None]]


def compare_params(params: Mapping[str, Mapping[str, Any]]) -> list[ParamRow]:
    """Every parameter any experiment has, by name; ``differs`` when the values are not all
    equal (a missing parameter counts as a different value)."""
    names = sorted({name for values in params.values() for name in values})
    rows = []
    for name in names:
        values = {eid: p.get(name) for eid, p in params.items()}
        distinct = {repr(v) for v in values.values()}
        rows.append(ParamRow(name, values, differs=len(distinct) > 1))
    return rows


def compare_metrics(metrics: Mapping[str, Mapping[str, float]]) -> list[MetricRow]:
    """Every final metric by name, with the experiments that have the best value."""
    names = sorted({name for values in metrics.values() for name in values})
    rows = []
    for name in names:
        values = {eid: m.get(name) for eid, m in metrics.items()}
        goal = goal_of(name)
        present = {eid: v for eid, v in values.items() if v is not None}
        best: list[str] = []
        if goal is not None and present:
            target = min(present.values()) if goal == "min" else max(present.values())
            best = [eid for eid, v in present.items() if v == target]
        rows.append(MetricRow(name, values, goal, best))
    return rows


def align_curves(metric: str, curves: Mapping[str, Sequence[tuple[int, float]]]) -> AlignedCurve:
    """Put each experiment's (step, value) points on the union of all steps."""
    steps = sorted({step for points in curves.values() for step, _ in points})
    values = {}
    for eid, points in curves.items():
        by_step = dict(points)
        values[eid] = [by_step.get(step) for step in steps]
    return AlignedCurve(metric, steps, values)


@dataclass(frozen=True)
class Verdict:
    """How a challenger did against a baseline over paired windows: its mean gain and the
    margin it had to clear, both relative to the baseline's mean error."""

    gain: float
    margin: float

    @property
    def won(self) -> bool:
        return self.gain > self.margin


def verdict(challenger: Sequence[float], baseline: Sequence[float]) -> Verdict | None:
    """``challenger``'s per-window errors against the ``baseline``'s, or None when they
    cannot be paired (another number of windows, or fewer than two).

    The margin is the one-sided ``CONFIDENCE`` quantile of Student's t times the standard
    error of the paired differences: with four windows, 2.35 standard errors. At one
    standard error, search winners on a small real set cleared the margin and still lost
    on its test part (bench/forecast.py)."""
    if len(challenger) != len(baseline) or len(challenger) < 2:
        return None
    differences = [b - c for b, c in zip(baseline, challenger, strict=True)]
    scale = statistics.fmean(baseline)
    standard_error = statistics.stdev(differences) / math.sqrt(len(differences))
    quantile = float(student_t.ppf(CONFIDENCE, len(differences) - 1))
    return Verdict(statistics.fmean(differences) / scale, quantile * standard_error / scale)


@dataclass(frozen=True)
class WindowRow:
    """One experiment against the baseline (None: its windows cannot be paired)."""

    experiment_id: str
    gain: float | None
    margin: float | None
    won: bool


@dataclass(frozen=True)
class WindowComparison:
    """The first experiment with window errors is the baseline; the winner is the
    challenger that beat it by the largest gain among those that won, else the baseline."""

    metric: str
    baseline: str
    rows: list[WindowRow]
    winner: str


def compare_windows(windows: Mapping[str, Sequence[float]]) -> WindowComparison | None:
    """Judge each experiment's window errors against the first one's (``verdict``), or
    None when fewer than two experiments have any."""
    scored = {eid: errors for eid, errors in windows.items() if errors}
    if len(scored) < 2:
        return None
    baseline, *challengers = scored
    rows = []
    for eid in challengers:
        judged = verdict(scored[eid], scored[baseline])
        if judged is None:
            rows.append(WindowRow(eid, None, None, won=False))
        else:
            rows.append(WindowRow(eid, judged.gain, judged.margin, judged.won))
    winners = [row for row in rows if row.won]
    winner = max(winners, key=lambda row: row.gain or 0.0).experiment_id if winners else baseline
    return WindowComparison(WINDOW_METRIC, baseline, rows, winner)
