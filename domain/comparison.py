"""Side-by-side comparison of experiments: parameters, final metrics and one aligned curve.

Pure functions over plain values, so the API and the CLI show the same comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Goal = Literal["min", "max"]

#: Metrics where higher is better; error metrics (mae, rmse, l1, ...) are lower-is-better.
HIGHER_IS_BETTER = frozenset({"r2", "precision", "recall", "f1", "auc", "accuracy"})
#: Metrics that describe a run rather than rank it.
NOT_RANKED = frozenset({"anomaly_rate", "best_iteration"})


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
