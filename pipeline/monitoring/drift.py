"""Drift as stated rules: is a served model still as accurate as its test part said, and
do the data it now sees look like those it was trained on?

**Accuracy.** The test part is cut into windows of one forecast each (``horizon``
consecutive timestamps), and each window's MAE is taken: their mean is the test MAE,
their spread says how much one window's MAE varies by chance. The live MAE is the mean
over the most recent ``RECENT_WINDOWS`` evaluated forecasts; under "nothing changed" it
lies within ``z`` standard errors (the test windows' standard deviation over the square
root of the live windows) of the test MAE. The status is

- ``drifted``: more than ``DRIFT_Z`` standard errors above, and at least
  ``DRIFT_RATIO`` times the test MAE (a difference too small to matter is not drift,
  however sure);
- ``watch``: more than ``WATCH_Z`` standard errors above and at least ``WATCH_RATIO``
  times;
- ``ok`` otherwise.

Two windows make a +20 % level shift of a load series show within two days (its first
day's MAE grows several-fold; bench/continuous.py), while a blip of one day is halved by
the other. A false alarm costs a retrain at most (a policy's cooldown and daily limit
bound them, and a retrain is promoted only on the same evidence); a shift missed costs
every forecast until it is seen.

**Shift.** The population stability index (PSI) of the target and of each covariate: the
recent actuals binned by the deciles of the training rows. The usual reading of it: below
0.1 no shift, 0.1-0.25 a moderate one (``watch``), above 0.25 a large one (``drifted``).
Seasonal series shift with the season by this measure, so a shift alone does not make
the model's status: the model is ``drifted`` when its accuracy is. The shift statuses say
where to look.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

#: Evaluated forecasts the live MAE is taken over.
RECENT_WINDOWS = 2
#: A forecast's MAE is a live window once this share of its rows has its actual: the
#: test windows it is held to span a horizon of every series, and a window of the first
#: row or two alone had drifted by chance on one pass in five.
SCORED_SHARE = 0.9
WATCH_Z, WATCH_RATIO = 2.0, 1.05
DRIFT_Z, DRIFT_RATIO = 3.0, 1.10
PSI_WATCH, PSI_DRIFTED = 0.1, 0.25
#: Fewer recent values than this say nothing about a column's distribution.
MIN_SHIFT_ROWS = 50
#: A bin's share is floored here, so that an empty bin does not make the PSI infinite.
_FLOOR = 1e-4


class Status(StrEnum):
    OK = "ok"
    WATCH = "watch"
    DRIFTED = "drifted"


@dataclass(frozen=True)
class AccuracyCheck:
    """The live MAE against the test MAE, and the band chance allows."""

    status: Status
    live_mae: float
    test_mae: float
    #: live / test MAE (None: a test MAE of 0).
    ratio: float | None
    #: How many standard errors the live MAE lies above the test MAE (None: the test
    #: windows do not vary).
    z: float | None
    #: The live MAE's band under "nothing changed" (``WATCH_Z`` standard errors).
    band: tuple[float, float]
    windows: int
    test_windows: int


@dataclass(frozen=True)
class ShiftCheck:
    """One column's recent values against its training values."""

    status: Status
    psi: float
    rows: int


@dataclass(frozen=True)
class Health:
    """A model's drift checks as of one evaluation: the model's status is its accuracy's."""

    status: Status
    accuracy: AccuracyCheck | None
    target: ShiftCheck | None = None
    covariates: dict[str, ShiftCheck] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reference:
    """A column's training distribution: the inner decile edges and each bin's share."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    @classmethod
    def of(cls, values: np.ndarray, bins: int = 10) -> Reference | None:
        """None where the column has no finite value or a single one."""
        finite = values[np.isfinite(values)]
        if len(np.unique(finite)) < 2:
            return None
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
        return cls(tuple(float(e) for e in edges), _shares(finite, edges))

    def as_dict(self) -> dict[str, list[float]]:
        return {"edges": list(self.edges), "shares": list(self.shares)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> Reference:
        return cls(tuple(data["edges"]), tuple(data["shares"]))


def window_errors(
    timestamps: np.ndarray, actual: np.ndarray, predicted: np.ndarray, horizon: int
) -> np.ndarray:
    """The MAE of each window of ``horizon`` consecutive test timestamps (all series)."""
    _, position = np.unique(timestamps, return_inverse=True)
    window = position // max(horizon, 1)
    errors = np.abs(actual - predicted)
    totals = np.bincount(window, weights=errors)
    counts = np.bincount(window)
    return totals[counts > 0] / counts[counts > 0]


def accuracy_check(live: Sequence[float], test: Sequence[float]) -> AccuracyCheck | None:
    """The rule above on the live windows' MAEs (most recent last) and the test
    windows'; None without a live window or two test windows."""
    recent = np.asarray(live[-RECENT_WINDOWS:], dtype=float)
    windows = np.asarray(test, dtype=float)
    if not len(recent) or len(windows) < 2:
        return None
    test_mae = float(np.mean(windows))
    live_mae = float(np.mean(recent))
    error = float(np.std(windows, ddof=1)) / math.sqrt(len(recent))
    z = (live_mae - test_mae) / error if error > 0 else None
    ratio = live_mae / test_mae if test_mae > 0 else None
    above = math.inf if z is None and live_mae > test_mae else (z or 0.0)
    times = math.inf if ratio is None and live_mae > 0 else (ratio or 0.0)
    if above > DRIFT_Z and times >= DRIFT_RATIO:
        status = Status.DRIFTED
    elif above > WATCH_Z and times >= WATCH_RATIO:
        status = Status.WATCH
    else:
        status = Status.OK
    return AccuracyCheck(
        status=status,
        live_mae=live_mae,
        test_mae=test_mae,
        ratio=ratio,
        z=z,
        band=(max(test_mae - WATCH_Z * error, 0.0), test_mae + WATCH_Z * error),
        windows=len(recent),
        test_windows=len(windows),
    )


def population_stability(reference: Reference, values: np.ndarray) -> float:
    """PSI: the sum over bins of (recent share - training share) x ln(their ratio)."""
    finite = values[np.isfinite(values)]
    expected = np.maximum(np.asarray(reference.shares), _FLOOR)
    actual = np.maximum(np.asarray(_shares(finite, np.asarray(reference.edges))), _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def shift_check(reference: Reference, values: np.ndarray) -> ShiftCheck:
    """The PSI rule above (``ok`` on fewer than ``MIN_SHIFT_ROWS`` values: too few to say)."""
    rows = int(np.isfinite(values).sum())
    if rows < MIN_SHIFT_ROWS:
        return ShiftCheck(Status.OK, 0.0, rows)
    psi = population_stability(reference, values)
    status = (
        Status.DRIFTED if psi >= PSI_DRIFTED else Status.WATCH if psi >= PSI_WATCH else Status.OK
    )
    return ShiftCheck(status, psi, rows)


def _shares(values: np.ndarray, edges: np.ndarray) -> tuple[float, ...]:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    total = max(int(counts.sum()), 1)
    return tuple(float(c) / total for c in counts)
