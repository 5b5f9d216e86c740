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
