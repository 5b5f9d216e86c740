"""The promotion rule on fixed per-window scores: the margin, the paired test, the evidence."""

from __future__ import annotations

import json

import pytest

from domain.promotions import MAX_STORED_WINDOWS, Scores, judge, paired_test

PERIOD = {"start": "2025-04-01T00:00:00+00:00", "end": "2025-04-06T23:00:00+00:00", "rows": 144}
DAYS = [f"2025-04-0{i}" for i in range(1, 7)]


def scores(challenger: list[float], champion: list[float], metric: str = "mae") -> Scores:
    return Scores(
        metric=metric,  # type: ignore[arg-type]
        challenger=sum(challenger) / len(challenger),
        champion=sum(champion) / len(champion),
        labels=DAYS[: len(challenger)],
        challenger_windows=challenger,
        champion_windows=champion,
    )


def test_the_paired_test_is_wilcoxons_signed_rank_test() -> None:
    # Six days all better: the exact one-sided p-value is 1 / 2^6.
    better = paired_test([1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 7])
    assert (better.windows, better.statistic) == (6, 0.0)
    assert better.p_value == pytest.approx(1 / 64)
    assert better.confidence == pytest.approx(63 / 64)
    # Worse by 1 on five days, better by 10 on one: the mean favours the challenger, the
    # ranks do not (rank sum of the positive differences 15 of 21; tied ranks: scipy's
    # normal approximation).
    mixed = paired_test([3, 3, 3, 3, 3, -7], [2, 2, 2, 2, 2, 3])
    assert mixed.statistic == 15.0
    assert mixed.confidence < 0.1
    # The margin shifts the comparison: 5 % better each day is no gain at a 10 % margin.
    assert paired_test([0.95] * 4, [1.0] * 4, margin=0.1).p_value == pytest.approx(1.0)
    # Ties carry no sign; NaN days are left out.
    assert paired_test([1, 1, float("nan")], [1, 1, 2]).p_value == 1.0
    assert paired_test([1, 1, float("nan")], [1, 1, 2]).windows == 2
    with pytest.raises(ValueError, match="3 challenger windows against 2"):
        paired_test([1, 2, 3], [1, 2])


def test_a_challenger_worse_on_the_common_window_is_kept() -> None:
    worse = judge(scores([2.0, 2.1, 1.9, 2.2, 2.0, 2.1], [1.0] * 6), 0.0, 0.0, "t:m:1", PERIOD)
    assert not worse.better
    assert worse.champion_id == "t:m:1"
    assert worse.reason.startswith("does not beat the champion by the margin: MAE 2.05")
    assert "-105.00%" in worse.reason
    evidence = worse.evidence
    assert (evidence["challenger_score"], evidence["champion_score"]) == (2.05, 1.0)
    assert evidence["gain"] == pytest.approx(-1.05)
    assert evidence["window"] == PERIOD
    assert evidence["paired_test"]["p_value"] == 1.0
    assert evidence["windows"][0] == {"window": "2025-04-01", "challenger": 2.0, "champion": 1.0}


def test_the_margin_and_the_confidence_are_both_required() -> None:
    challenger, champion = [0.9, 0.95, 0.92, 0.97, 0.9, 0.93], [1.0] * 6
    assert judge(scores(challenger, champion), 0.05, 0.0, "c", PERIOD).better
    narrow = judge(scores(challenger, champion), 0.1, 0.0, "c", PERIOD)
    assert not narrow.better
    assert "margin 10%" in narrow.reason
    # Better by 10 % over the period, but on three days of six only: not sure.
    split = scores([0.7, 0.7, 0.7, 1.01, 1.01, 1.01], champion)
    unsure = judge(split, 0.0, 0.9, "c", PERIOD)
    assert not unsure.better
    assert unsure.reason.startswith("not sure enough (needs confidence 0.9)")
    assert judge(split, 0.0, 0.0, "c", PERIOD).better
    sure = judge(scores(challenger, champion), 0.0, 0.95, "c", PERIOD)
    assert sure.better
    assert sure.reason.startswith("beats the champion: MAE")
    assert sure.evidence["paired_test"]["confidence"] == pytest.approx(63 / 64)


def test_long_periods_keep_their_totals_not_every_window() -> None:
    days = MAX_STORED_WINDOWS + 1
    long = Scores("wql", 0.1, 0.2, [str(i) for i in range(days)], [0.1] * days, [0.2] * days)
    judged = judge(long, 0.0, 0.0, "c", PERIOD)
    assert "windows" not in judged.evidence
    assert judged.evidence["paired_test"]["windows"] == days
    assert judged.reason.startswith("beats the champion: WQL 0.1")


def test_scores_that_are_not_numbers_are_stored_as_none() -> None:
    """A WQL over rows whose actuals are all 0 is NaN: the evidence stays valid JSON."""
    nan = float("nan")
    decided = judge(scores([nan] * 3, [nan] * 3, metric="wql"), 0.0, 0.0, "c", PERIOD)
    assert not decided.better
    text = json.dumps(decided.evidence, allow_nan=False)
    assert json.loads(text)["challenger_score"] is None
