"""The retrain rules and their limits, decided on known facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.policies import Facts, Limits, Rule, Rules, decide

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
LIMITS = Limits(cooldown=timedelta(hours=6), max_per_day=2)
EVERY_RULE = Rules(drift_evaluations=2, new_rows=100, new_days=1.0, cron="0 2 * * *")


def facts(**changes: object) -> Facts:
    base: dict[str, object] = {"now": NOW, "running": False, "fired": []}
    return Facts(**{**base, **changes})  # type: ignore[arg-type]


def test_drift_fires_on_a_run_of_drifted_evaluations() -> None:
    drifted = decide(EVERY_RULE, LIMITS, facts(statuses=["drifted", "drifted", "ok"]))
    assert (drifted.rule, drifted.evidence) == (
        Rule.DRIFT,
        {"drifted_evaluations": 2, "latest_first": 1},
    )
    owed = decide(EVERY_RULE, LIMITS, facts(statuses=["ok", "watch", "drifted", "drifted"]))
    assert owed.rule is Rule.DRIFT  # seen while the limits held it back: still owed
    apart = decide(EVERY_RULE, LIMITS, facts(statuses=["drifted", "watch", "drifted"]))
    assert apart.rule is None
    too_few = decide(EVERY_RULE, LIMITS, facts(statuses=["drifted"]))
    assert too_few.rule is None


def test_new_data_by_rows_or_by_days() -> None:
    rows = decide(EVERY_RULE, LIMITS, facts(new_rows=100, new_days=0.5))
    assert (rows.rule, rows.evidence) == (Rule.NEW_DATA, {"new_rows": 100, "new_days": 0.5})
    days = decide(EVERY_RULE, LIMITS, facts(new_rows=5, new_days=1.0))
    assert days.rule is Rule.NEW_DATA
    assert decide(EVERY_RULE, LIMITS, facts(new_rows=99, new_days=0.9)).rule is None
    assert decide(Rules(new_rows=1), LIMITS, facts()).rule is None  # no champion


def test_a_due_schedule_fires_last() -> None:
    due = NOW - timedelta(hours=10)
    scheduled = decide(EVERY_RULE, LIMITS, facts(due_fire=due))
    assert scheduled.rule is Rule.SCHEDULE
    assert scheduled.evidence["fire_time"] == due.isoformat()
    both = decide(EVERY_RULE, LIMITS, facts(due_fire=due, statuses=["drifted"] * 2))
    assert both.rule is Rule.DRIFT


def test_limits_hold_every_rule_back() -> None:
    drifting = {"statuses": ["drifted"] * 2}
    running = decide(EVERY_RULE, LIMITS, facts(running=True, **drifting))
    assert running.rule is None
    assert "queued or running" in running.evidence["waiting"]
    cooling = decide(EVERY_RULE, LIMITS, facts(fired=[NOW - timedelta(hours=5)], **drifting))
    assert cooling.rule is None
    assert cooling.evidence["cooldown_until"] == (NOW + timedelta(hours=1)).isoformat()
    after = decide(EVERY_RULE, LIMITS, facts(fired=[NOW - timedelta(hours=7)], **drifting))
    assert after.rule is Rule.DRIFT
    two = [NOW - timedelta(hours=20), NOW - timedelta(hours=7)]
    limited = decide(EVERY_RULE, LIMITS, facts(fired=two, **drifting))
    assert limited.rule is None
    assert "2 retrains" in limited.evidence["rate_limited"]


def test_rules_say_whether_any_is_on() -> None:
    assert not Rules().any()
    assert Rules(cron="0 2 * * *").any()
