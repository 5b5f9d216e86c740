"""The automatic rollback rule on fixed paired scores: when to wait, roll back or let the
promotion stand, the daily pairing across forecasts, and the stored shape it reads."""

from __future__ import annotations

import math

import pytest

from domain.rollbacks import (
    LOOKS,
    DayScores,
    PairedForecast,
    RollbackRule,
    Verdict,
    days_to_be_sure,
    decide,
    paired_forecast,
)


def forecast(day: int, model: float, previous: float, rows: int = 24) -> PairedForecast:
    label = f"2025-05-{day:02d}"
    return PairedForecast(
        f"f{day}", rows, model, previous, [DayScores(label, rows, model, previous)]
    )


def test_it_waits_for_after_forecasts_then_rolls_back_a_worse_champion() -> None:
    rule = RollbackRule(after_forecasts=5, min_confidence=0.9)
    worse = [forecast(day, model=1.5 + day / 100, previous=1.0) for day in range(1, 7)]
    assert decide(rule, worse[:4]).verdict is Verdict.WAIT
    outcome = decide(rule, worse[:5])
    assert outcome.verdict is Verdict.ROLL_BACK
    # Five days all worse: the exact one-sided p-value is 1 / 2^5.
    assert outcome.evidence["paired_test"]["p_value"] == pytest.approx(1 / 32)
    assert outcome.evidence["model_score"] == pytest.approx(1.53)
    assert outcome.evidence["previous_score"] == pytest.approx(1.0)
    assert outcome.evidence["forecasts"] == ["f1", "f2", "f3", "f4", "f5"]
    assert [d["day"] for d in outcome.evidence["days"]] == [f"2025-05-0{i}" for i in range(1, 6)]
    assert "rolled back automatically: live MAE 1.53 against the previous champion's 1" in (
        outcome.reason
    )
    assert "5 UTC day(s) from 2025-05-01 to 2025-05-05" in outcome.reason
    assert "confidence 0.969" in outcome.reason


def test_a_better_or_barely_worse_champion_stands_after_the_last_look() -> None:
    rule = RollbackRule(after_forecasts=2, margin=0.1, min_confidence=0.5)
    better = [forecast(day, model=0.9, previous=1.0) for day in range(1, 10)]
    assert decide(rule, better[:2]).verdict is Verdict.WAIT
    assert decide(rule, better[: LOOKS * 2 - 1]).verdict is Verdict.WAIT
    stands = decide(rule, better)
    assert stands.verdict is Verdict.STANDS
    assert len(stands.evidence["forecasts"]) == LOOKS * 2  # later ones are never looked at
    assert stands.reason.startswith("the promotion stands: live MAE 0.9")
    # 5 % worse each day is within a 10 % margin: the previous one does not beat it by it.
    barely = [forecast(day, model=1.05, previous=1.0) for day in range(1, 4)]
    assert decide(rule, barely).verdict is Verdict.WAIT
    assert decide(rule, barely).reason.startswith("not worse by the margin")


def test_it_needs_the_paired_test_to_be_sure() -> None:
    # Worse on average by one bad day, better on the others: the ranks do not say worse.
    mixed = [forecast(1, 5.0, 1.0)] + [forecast(day, 0.9, 1.0) for day in range(2, 6)]
    outcome = decide(RollbackRule(after_forecasts=5, min_confidence=0.9), mixed)
    assert outcome.evidence["model_score"] > outcome.evidence["previous_score"]
    assert outcome.verdict is Verdict.WAIT
    assert outcome.reason.startswith("not sure enough")
    # Without a confidence asked for, the scores alone decide.
    assert decide(RollbackRule(after_forecasts=5, min_confidence=0.0), mixed).verdict is (
        Verdict.ROLL_BACK
    )


def test_a_day_forecast_twice_counts_once_weighted_by_rows() -> None:
    first = PairedForecast(
        "a",
        48,
        2.0,
        1.0,
        [DayScores("2025-05-01", 24, 2.0, 1.0), DayScores("2025-05-02", 24, 2.0, 1.0)],
    )
    second = PairedForecast("b", 72, 4.0, 1.0, [DayScores("2025-05-02", 72, 4.0, 1.0)])
    outcome = decide(RollbackRule(after_forecasts=2, min_confidence=0.0), [first, second])
    assert outcome.evidence["days"] == [
        {"day": "2025-05-01", "rows": 24, "model": 2.0, "previous": 1.0},
        {"day": "2025-05-02", "rows": 96, "model": 3.5, "previous": 1.0},
    ]
    assert outcome.evidence["model_score"] == pytest.approx((48 * 2 + 72 * 4) / 120)


def test_the_stored_shadow_is_read_for_the_rules_metric() -> None:
    shadow = {
        "model_id": "t:load:1",
        "rows": 24,
        "metrics": {"mae": {"model": 2.0, "previous": 1.0}, "wql": {"model": None, "previous": 1}},
        "days": [
            {"day": "2025-05-01", "rows": 24, "metrics": {"mae": {"model": 2, "previous": 1}}}
        ],
    }
    paired = paired_forecast("f", shadow, "mae")
    assert paired == PairedForecast("f", 24, 2.0, 1.0, [DayScores("2025-05-01", 24, 2.0, 1.0)])
    assert paired_forecast("f", shadow, "wql") is None  # a score missing: not counted
    assert paired_forecast("f", shadow, "coverage_error") is None
    nan = {**shadow, "metrics": {"mae": {"model": math.nan, "previous": 1.0}}}
    assert paired_forecast("f", nan, "mae") is None


def hourly(day: int, hour: int, model: float, previous: float) -> PairedForecast:
    """A forecast made at ``hour`` of ``day`` whose 24 rows span it and the next day."""
    rows = [(f"2025-05-{day:02d}", 24 - hour), (f"2025-05-{day + 1:02d}", hour)]
    days = [DayScores(label, count, model, previous) for label, count in rows if count]
    return PairedForecast(f"f{day}-{hour}", 24, model, previous, days)


def test_forecasts_made_hourly_are_judged_over_days_not_hours() -> None:
    """28 hourly forecasts span two days, on which the test can never be 0.9 sure: the
    promotion does not stand on them; it stands after 4 x 4 days."""
    rule = RollbackRule(after_forecasts=7, min_confidence=0.9)
    assert (days_to_be_sure(0.9), rule.last_day) == (4, 16)
    better = [hourly(day, hour, 0.9, 1.0) for day in range(1, 25) for hour in range(24)]
    assert decide(rule, better[: rule.last_forecast]).verdict is Verdict.WAIT
    # Up to the one made at midnight on day 15, fifteen days are forecast; the next one
    # reaches into the 16th.
    assert decide(rule, better[: 14 * 24 + 1]).verdict is Verdict.WAIT
    stands = decide(rule, better)
    assert stands.verdict is Verdict.STANDS
    assert len(stands.evidence["forecasts"]) == 14 * 24 + 2
    assert len(stands.evidence["days"]) == 16
    # Worse on each of four days: rolled back (it could not have been on two).
    worse = [hourly(day, hour, 1.5, 1.0) for day in range(1, 5) for hour in range(24)]
    assert decide(rule, worse[:48]).verdict is Verdict.WAIT
    assert decide(rule, worse[:72]).verdict is Verdict.ROLL_BACK


def test_the_days_the_test_needs_to_be_sure() -> None:
    assert [days_to_be_sure(c) for c in (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)] == [0, 1, 3, 4, 5, 7]
    assert days_to_be_sure(1.0) == 0  # never sure: the forecasts alone end the watch
    # Daily forecasts at the defaults: 28 forecasts over 28 days, as before.
    daily = [forecast(day, 0.9, 1.0) for day in range(1, 31)]
    assert len(decide(RollbackRule(), daily).evidence["forecasts"]) == 28


def test_a_watch_it_cannot_pair_stands_not_compared_and_the_read_limit_ends_it() -> None:
    rule = RollbackRule(after_forecasts=2, metric="wql")
    assert decide(rule, [], unpaired=LOOKS * 2 - 1).verdict is Verdict.WAIT
    stands = decide(rule, [], unpaired=LOOKS * 2)
    assert stands.verdict is Verdict.STANDS
    assert stands.reason.startswith("the promotion stands, not compared")
    assert stands.evidence == {"metric": "wql", "unpaired": 8}
    # Paired ones count once there are enough of them to judge.
    three = [forecast(day, 0.9, 1.0) for day in range(1, 4)]
    assert decide(rule, three, unpaired=100).verdict is Verdict.WAIT
    assert decide(rule, three, unpaired=100, last_read=True).verdict is Verdict.STANDS
