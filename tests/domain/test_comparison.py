"""Which of several experiments won over the validation windows: a challenger wins only by
more than the spread of its paired gains allows by chance."""

from __future__ import annotations

import pytest
from scipy.stats import ttest_rel

from domain.comparison import CONFIDENCE, WINDOW_METRIC, compare_windows, verdict

DEFAULT = [10.0, 12.0, 11.0, 9.0]
STEADY = [9.0, 11.1, 10.0, 8.1]  # about 1 better on every window
ERRATIC = [8.0, 13.0, 9.5, 9.3]  # better on the mean, not reliably


def test_a_challenger_wins_only_by_more_than_chance() -> None:
    steady = verdict(STEADY, DEFAULT)
    assert steady is not None
    assert steady.won
    assert steady.gain == pytest.approx(3.8 / 42)
    erratic = verdict(ERRATIC, DEFAULT)
    assert erratic is not None
    assert erratic.gain > 0
    assert not erratic.won
    worse = verdict([11.0, 13.0, 12.0, 10.0], DEFAULT)
    assert worse is not None
    assert not worse.won
    assert verdict([9.0, 11.0, 10.0], DEFAULT) is None  # not paired
    assert verdict([9.0], [10.0]) is None


@pytest.mark.parametrize("challenger", [STEADY, ERRATIC, [9.5, 11.9, 10.4, 8.8]])
def test_the_margin_is_a_one_sided_paired_t_test(challenger: list[float]) -> None:
    judged = verdict(challenger, DEFAULT)
    assert judged is not None
    test = ttest_rel(DEFAULT, challenger, alternative="greater")
    assert judged.won == (test.pvalue < 1 - CONFIDENCE)


def test_the_winner_is_the_baseline_unless_a_challenger_beat_it() -> None:
    kept = compare_windows({"default": DEFAULT, "erratic": ERRATIC, "no windows": []})
    assert kept is not None
    assert kept.metric == WINDOW_METRIC
    assert kept.baseline == "default"
    assert [row.experiment_id for row in kept.rows] == ["erratic"]
    assert kept.winner == "default"
    better = [x - 0.5 for x in STEADY]
    beaten = compare_windows(
        {"default": DEFAULT, "steady": STEADY, "better": better, "short": [1.0, 1.0]}
    )
    assert beaten is not None
    assert beaten.winner == "better"
    assert [row.won for row in beaten.rows] == [True, True, False]
    short = beaten.rows[-1]
    assert (short.gain, short.margin) == (None, None)
    assert compare_windows({"default": DEFAULT, "plain job": []}) is None
