"""Automatic rollback, as a pure decision: is a newly promoted champion, served live, worse
than the champion it replaced on the same rows?

While its policy asks for it (``RollbackRule``), each scored forecast of the new champion
is also forecast by the previous one, row for row, and both are scored per UTC day
(``pipeline.monitoring.shadow``): a ``PairedForecast``. The rule over the paired
forecasts since the promotion, by forecast date, up to its last look (below):

- fewer than ``after_forecasts``: wait;
- the previous champion's score beats the new one's by the margin (``previous < (1 -
  margin) x model``, the promotion rule with the roles swapped) and a one-sided Wilcoxon
  signed-rank test over the paired daily scores is at least ``min_confidence`` sure of
  it: roll back;
- otherwise wait for more, until the last look: then the promotion stands and is not
  looked at again.

The last look is the first paired forecast by which there are ``LOOKS x after_forecasts``
forecasts over at least ``LOOKS x`` the UTC days on which the test could first be that
sure (4 days for 0.9: ``days_to_be_sure``), so that forecasts made more often than daily
are judged over days, not hours. A watch whose forecasts the previous champion could not
be paired on (it forecasts none of their rows, a metric it has no quantiles for) stands,
not compared, once ``LOOKS x after_forecasts`` of them were tried before
``after_forecasts`` were paired.

Scores over several forecasts are their row-weighted means (exact for MAE; for WQL and
the coverage error an average of each forecast's own), and a day forecast by several
forecasts counts once, their row-weighted mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.promotions import MAX_STORED_WINDOWS, PromotionMetric, paired_test

#: The check ends, and the promotion stands, after this many times ``after_forecasts``.
LOOKS = 4


@dataclass(frozen=True)
class RollbackRule:
    """A policy's ``rollback``: when a new champion's live scores undo its promotion."""

    after_forecasts: int = 7
    metric: PromotionMetric = "mae"
    margin: float = 0.0
    min_confidence: float = 0.9

    @property
    def last_forecast(self) -> int:
        """Paired forecasts after which the promotion stands (given the days)."""
        return LOOKS * self.after_forecasts

    @property
    def last_day(self) -> int:
        """Paired UTC days after which the promotion stands (given the forecasts)."""
        return LOOKS * days_to_be_sure(self.min_confidence)


@dataclass(frozen=True)
class DayScores:
    day: str
    rows: int
    model: float
    previous: float


@dataclass(frozen=True)
class PairedForecast:
    """One scored forecast of the new champion and the previous one's on the same rows."""

    forecast_id: str
    rows: int
    model: float
    previous: float
    days: Sequence[DayScores]


class Verdict(StrEnum):
    WAIT = "wait"
    ROLL_BACK = "roll_back"
    STANDS = "stands"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reason: str
    evidence: dict[str, Any]


def paired_forecast(
    forecast_id: str, shadow: Mapping[str, Any], metric: PromotionMetric
) -> PairedForecast | None:
    """The ``metric`` pair of a stored shadow evaluation (``pipeline.monitoring.shadow``
    writes its shape); None when either score is missing."""
    overall = shadow.get("metrics", {}).get(metric)
    if not _pair(overall):
        return None
    days = [
        DayScores(day["day"], int(day["rows"]), *_values(day["metrics"][metric]))
        for day in shadow.get("days", [])
        if _pair(day.get("metrics", {}).get(metric))
    ]
    return PairedForecast(forecast_id, int(shadow["rows"]), *_values(overall), days=days)


def days_to_be_sure(min_confidence: float) -> int:
    """The fewest paired days on which the one-sided test can reach ``min_confidence``:
    with every day on one side its p-value is 2 ** -days (0: it never can, at 1)."""
    if min_confidence >= 1.0:
        return 0
    return max(0, math.ceil(math.log2(1.0 / (1.0 - min_confidence)) - 1e-9))


def looked_at(
    rule: RollbackRule, paired: Sequence[PairedForecast], last_read: bool = False
) -> tuple[int, bool]:
    """How many of ``paired`` (in forecast-date order) the rule looks at, and whether that
    is its last look (``last_read``: no more will be read)."""
    days: set[str] = set()
    for count, forecast in enumerate(paired, 1):
        days.update(day.day for day in forecast.days)
        if count >= rule.last_forecast and len(days) >= rule.last_day:
            return count, True
    return len(paired), last_read


def decide(
    rule: RollbackRule,
    paired: Sequence[PairedForecast],
    unpaired: int = 0,
    *,
    last_read: bool = False,
) -> Outcome:
    """The verdict on the paired forecasts since the promotion, in forecast-date order.
    ``unpaired``: the shadowed forecasts the previous champion could not be paired on;
    ``last_read``: no more forecasts will be read (the check's limit)."""
    count, last = looked_at(rule, paired, last_read)
    looked = list(paired[:count])
    if len(looked) < rule.after_forecasts:
        if unpaired >= rule.last_forecast:
            reason = (
                f"the promotion stands, not compared: the previous champion could not be "
                f"paired on {rule.metric} for {unpaired} of its forecasts"
            )
            return Outcome(Verdict.STANDS, reason, {"metric": rule.metric, "unpaired": unpaired})
        return Outcome(Verdict.WAIT, f"{len(looked)} of {rule.after_forecasts} forecasts", {})
    model = _weighted([(p.rows, p.model) for p in looked])
    previous = _weighted([(p.rows, p.previous) for p in looked])
    days = _days(looked)
    test = paired_test([d.previous for d in days], [d.model for d in days], rule.margin)
    worse = previous < (1.0 - rule.margin) * model
    sure = test.confidence >= rule.min_confidence
    name = rule.metric.upper() if rule.metric != "coverage_error" else "coverage error"
    gap = (model - previous) / previous if previous else math.inf
    summary = (
        f"live {name} {model:.6g} against the previous champion's {previous:.6g} on the same "
        f"{sum(p.rows for p in looked)} rows of {len(looked)} forecast(s) over {len(days)} "
        f"UTC day(s) from {days[0].day if days else '-'} to {days[-1].day if days else '-'}: "
        f"{100 * gap:+.2f}% (margin {100 * rule.margin:g}%), confidence "
        f"{test.confidence:.3f} (one-sided Wilcoxon signed-rank p={test.p_value:.3g})"
    )
    evidence: dict[str, Any] = {
        "metric": rule.metric,
        "margin": rule.margin,
        "min_confidence": rule.min_confidence,
        "model_score": model,
        "previous_score": previous,
        "forecasts": [p.forecast_id for p in looked],
        "rows": sum(p.rows for p in looked),
        "paired_test": {**test.as_dict(), "alternative": "previous < (1 - margin) * model"},
    }
    if len(days) <= MAX_STORED_WINDOWS:
        evidence["days"] = [
            {"day": d.day, "rows": d.rows, "model": d.model, "previous": d.previous} for d in days
        ]
    if worse and sure:
        return Outcome(Verdict.ROLL_BACK, f"rolled back automatically: {summary}", evidence)
    if last:
        return Outcome(Verdict.STANDS, f"the promotion stands: {summary}", evidence)
    why = "not worse by the margin" if not worse else "not sure enough"
    return Outcome(Verdict.WAIT, f"{why}: {summary}", evidence)


def _days(paired: Sequence[PairedForecast]) -> list[DayScores]:
    """Each UTC day once: the row-weighted mean of the forecasts that scored it."""
    by_day: dict[str, list[DayScores]] = defaultdict(list)
    for forecast in paired:
        for day in forecast.days:
            by_day[day.day].append(day)
    return [
        DayScores(
            label,
            sum(d.rows for d in scored),
            _weighted([(d.rows, d.model) for d in scored]),
            _weighted([(d.rows, d.previous) for d in scored]),
        )
        for label, scored in sorted(by_day.items())
    ]


def _weighted(values: Sequence[tuple[int, float]]) -> float:
    total = sum(rows for rows, _ in values)
    return sum(rows * value for rows, value in values) / total if total else math.nan


def _pair(scores: Any) -> bool:
    return (
        isinstance(scores, Mapping)
        and all(isinstance(scores.get(k), (int, float)) for k in ("model", "previous"))
        and all(math.isfinite(scores[k]) for k in ("model", "previous"))
    )


def _values(scores: Mapping[str, float]) -> tuple[float, float]:
    return float(scores["model"]), float(scores["previous"])
