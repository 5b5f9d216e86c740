"""Promotion on the same evidence: a challenger against the champion over the windows both
forecast and neither was fitted on.

The challenger replaces the champion only if its score over that common period beats the
champion's by the policy's margin (relative, and every metric here is lower-is-better:
``challenger < (1 - margin) * champion``), and, when the policy asks for it, only if a
one-sided Wilcoxon signed-rank test over the paired per-window scores is at least
``min_confidence`` sure of it. Daily windows and a rank test: a day's error is one paired
observation, and a holiday's outlier moves a rank, not the mean.

Pure functions over plain values: the pipeline judges, the database stores, the API,
the CLI and the console show the same evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from scipy.stats import wilcoxon

from domain.errors import Conflict

#: What a promotion compares; lower is better for each.
PromotionMetric = Literal["mae", "wql", "coverage_error"]
#: The test the evidence reports.
PAIRED_TEST = "wilcoxon_signed_rank"
#: The per-window scores are kept in the evidence up to this many windows.
MAX_STORED_WINDOWS = 100
#: The reason stored when a model is promoted because there was nothing to beat.
NO_CHAMPION = "no champion"


class NothingToRollBack(Conflict):
    """A rollback with no earlier champion to restore (409)."""


class Decision(StrEnum):
    PROMOTED = "promoted"
    KEPT = "kept"
    ROLLED_BACK = "rolled_back"
    #: A rollback rule's watch over a promotion ended without rolling it back.
    STOOD = "stood"


@dataclass(frozen=True)
class PairedTest:
    """A one-sided Wilcoxon signed-rank test that the challenger's per-window scores lie
    below ``(1 - margin)`` times the champion's; ``confidence`` is ``1 - p_value``."""

    windows: int
    statistic: float | None
    p_value: float

    @property
    def confidence(self) -> float:
        return 1.0 - self.p_value

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": PAIRED_TEST,
            "alternative": "challenger < (1 - margin) * champion",
            "windows": self.windows,
            "statistic": None if self.statistic is None else _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "confidence": _finite(self.confidence),
        }


def paired_test(
    challenger: Sequence[float], champion: Sequence[float], margin: float = 0.0
) -> PairedTest:
    """The test over the windows both scored (NaN scores are left out). Windows whose
    difference is zero carry no sign and are dropped (Wilcoxon's own rule); with none
    left the test says nothing (p = 1)."""
    ours, theirs = np.asarray(challenger, float), np.asarray(champion, float)
    if ours.shape != theirs.shape:
        raise ValueError(f"{len(ours)} challenger windows against {len(theirs)}")
    both = np.isfinite(ours) & np.isfinite(theirs)
    differences = ours[both] - (1.0 - margin) * theirs[both]
    if not np.any(differences != 0):
        return PairedTest(int(both.sum()), None, 1.0)
    result = wilcoxon(differences, alternative="less", zero_method="wilcox")
    return PairedTest(int(both.sum()), float(result.statistic), float(result.pvalue))


@dataclass(frozen=True)
class Scores:
    """Both models' scores on the common period, and per window (``labels`` name them)."""

    metric: PromotionMetric
    challenger: float
    champion: float
    labels: Sequence[str] = ()
    challenger_windows: Sequence[float] = ()
    champion_windows: Sequence[float] = ()

    @property
    def gain(self) -> float:
        """How much lower the challenger's score is, relative to the champion's."""
        if self.champion == 0:
            return 0.0 if self.challenger == 0 else -math.inf
        return (self.champion - self.challenger) / self.champion


@dataclass(frozen=True)
class Comparison:
    """What a job's compare stage found: the champion it scored (None: there was none),
    whether the challenger won as the policy asks, why, and the evidence to store."""

    champion_id: str | None
    better: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def judge(
    scores: Scores,
    margin: float,
    min_confidence: float,
    champion_id: str,
    period: Mapping[str, Any],
) -> Comparison:
    """The decision on ``scores`` over ``period`` (its start, end, rows and window length,
    as stored), with its evidence."""
    test = paired_test(scores.challenger_windows, scores.champion_windows, margin)
    name = scores.metric.upper() if scores.metric != "coverage_error" else "coverage error"
    beats = scores.challenger < (1.0 - margin) * scores.champion
    sure = test.confidence >= min_confidence
    summary = (
        f"{name} {scores.challenger:.6g} against the champion's {scores.champion:.6g} on the "
        f"same {test.windows} window(s) from {period.get('start')} to {period.get('end')}: "
        f"{100 * scores.gain:+.2f}% (margin {100 * margin:g}%), confidence "
        f"{test.confidence:.3f} ({PAIRED_TEST} p={test.p_value:.3g})"
    )
    if not beats:
        reason = f"does not beat the champion by the margin: {summary}"
    elif not sure:
        reason = f"not sure enough (needs confidence {min_confidence:g}): {summary}"
    else:
        reason = f"beats the champion: {summary}"
    evidence: dict[str, Any] = {
        "metric": scores.metric,
        "margin": margin,
        "min_confidence": min_confidence,
        "challenger_score": _finite(scores.challenger),
        "champion_score": _finite(scores.champion),
        "gain": _finite(scores.gain),
        "window": dict(period),
        "paired_test": test.as_dict(),
    }
    if len(scores.labels) <= MAX_STORED_WINDOWS:
        evidence["windows"] = [
            {"window": label, "challenger": _finite(ours), "champion": _finite(theirs)}
            for label, ours, theirs in zip(
                scores.labels, scores.challenger_windows, scores.champion_windows, strict=True
            )
        ]
    return Comparison(champion_id, beats and sure, reason, evidence)


def kept(champion_id: str, reason: str, **evidence: Any) -> Comparison:
    """A comparison that could not be made: the champion stays, for ``reason``."""
    return Comparison(champion_id, False, reason, {"not_compared": reason, **evidence})


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
