"""Retrain policies' rules, as pure decisions: given what is known about a model now,
does its policy start a retrain, and on which rule?

The rules, in the order they are asked (the first that holds fires):

- ``drift``: ``drift_evaluations`` scored forecasts of the champion in a row had the
  status ``drifted`` (``pipeline.monitoring.drift``) since the policy's last retrain: it
  has been wrong for a while, not once (a run the limits held back still counts once
  they allow a retrain: the retrain is owed);
- ``new_data``: the feature set has at least ``new_rows`` rows, or ``new_days`` days, the
  champion was not trained on;
- ``schedule``: a fire time of its cron expression passed since it was last looked at.

None fires while a retrain it started is still queued or running, within ``cooldown`` of
the last one, or once it started ``max_per_day`` in the past 24 hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Rule(StrEnum):
    DRIFT = "drift"
    NEW_DATA = "new_data"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class Rules:
    """A policy's rules (a rule left None is off)."""

    drift_evaluations: int | None = None
    new_rows: int | None = None
    new_days: float | None = None
    cron: str | None = None
    timezone: str = "UTC"

    def any(self) -> bool:
        return any(
            v is not None for v in (self.drift_evaluations, self.new_rows, self.new_days, self.cron)
        )


@dataclass(frozen=True)
class Limits:
    cooldown: timedelta
    max_per_day: int


@dataclass(frozen=True)
class Facts:
    """What is known about the model now."""

    now: datetime
    #: A retrain this policy started is queued or running.
    running: bool
    #: When this policy's retrains fired, the latest last.
    fired: Sequence[datetime]
    #: The statuses of the champion's scored forecasts since the policy's last retrain,
    #: the latest first (empty: none, or no champion).
    statuses: Sequence[str] = ()
    #: Rows and days the set holds past the champion's training data (None: no champion).
    new_rows: int | None = None
    new_days: float | None = None
    #: The latest fire time of the cron expression not yet acted on (None: none due).
    due_fire: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """A retrain to start (``rule`` set) or why not (``rule`` None)."""

    rule: Rule | None
    evidence: dict[str, Any]


#: What the limits forgive: checks run a minute or so apart, not at a fire's second, so a
#: daily fire under a day's cooldown (or one a day) comes seconds short of it on some days;
#: measured to the second, the owed fire would start a check later every day.
CHECK_SLACK = timedelta(minutes=5)


def decide(rules: Rules, limits: Limits, facts: Facts) -> Decision:
    """The policy's decision now (see the module's rules and limits)."""
    if facts.running:
        return Decision(None, {"waiting": "a retrain it started is queued or running"})
    if facts.fired and facts.now - facts.fired[-1] < limits.cooldown - CHECK_SLACK:
        return Decision(None, {"cooldown_until": (facts.fired[-1] + limits.cooldown).isoformat()})
    today = [t for t in facts.fired if facts.now - t < timedelta(days=1) - CHECK_SLACK]
    if len(today) >= limits.max_per_day:
        return Decision(None, {"rate_limited": f"{len(today)} retrains in the past 24 hours"})
    drifted = _drifted(rules, facts)
    if drifted is not None:
        return drifted
    new_data = _new_data(rules, facts)
    if new_data is not None:
        return new_data
    if rules.cron is not None and facts.due_fire is not None:
        return Decision(
            Rule.SCHEDULE, {"cron": rules.cron, "fire_time": facts.due_fire.isoformat()}
        )
    return Decision(None, {})


def _drifted(rules: Rules, facts: Facts) -> Decision | None:
    wanted = rules.drift_evaluations
    if wanted is None or len(facts.statuses) < wanted:
        return None
    run = 0
    for position, status in enumerate(facts.statuses):
        run = run + 1 if status == "drifted" else 0
        if run == wanted:
            return Decision(Rule.DRIFT, {"drifted_evaluations": wanted, "latest_first": position})
    return None


def _new_data(rules: Rules, facts: Facts) -> Decision | None:
    rows_due = (
        rules.new_rows is not None
        and facts.new_rows is not None
        and facts.new_rows >= rules.new_rows
    )
    days_due = (
        rules.new_days is not None
        and facts.new_days is not None
        and facts.new_days >= rules.new_days
    )
    if rows_due or days_due:
        return Decision(Rule.NEW_DATA, {"new_rows": facts.new_rows, "new_days": facts.new_days})
    return None
