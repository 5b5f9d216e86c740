"""Retrain policies' rows on both backends: one per tenant and model name, edits, the
retrains they started, and whether one still runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.jobs import JobStore
from db.policies import NewPolicy, PolicyStore
from domain.clock import utcnow
from domain.errors import AlreadyExists, PolicyNotFound
from domain.events import JobEvent
from tests.db.factories import new_job


def policy(model_name: str = "load") -> NewPolicy:
    return NewPolicy(
        tenant_id="tenant-a",
        model_name=model_name,
        job={"tenant_id": "tenant-a", "model_name": model_name, "config": {}},
        rules={"drift_evaluations": 3},
        cooldown_seconds=3600,
        max_per_day=2,
        window_seconds=None,
        warm_start=True,
        enabled=True,
    )


async def test_one_policy_per_model_edited_and_deleted(store: JobStore) -> None:
    policies = PolicyStore(store.database)
    created = await policies.create(policy(), utcnow())
    assert (created.rules, created.checked_at) == ({"drift_evaluations": 3}, created.created_at)
    with pytest.raises(AlreadyExists):
        await policies.create(policy(), utcnow())
    other = await policies.create(policy("peak"), utcnow())
    assert [p.model_name for p in await policies.search("tenant-a")] == ["load", "peak"]
    assert await policies.search("tenant-b") == []

    changed = await policies.update(
        created.policy_id, {"enabled": False, "max_per_day": 5}, utcnow()
    )
    assert (changed.enabled, changed.max_per_day) == (False, 5)
    with pytest.raises(ValueError, match="cannot be changed"):
        await policies.update(created.policy_id, {"tenant_id": "x"}, utcnow())
    with pytest.raises(PolicyNotFound):
        await policies.get(created.policy_id, tenant_id="tenant-b")

    assert (created.rollback, other.rollback) == (None, None)  # off unless asked for
    rule = {"after_forecasts": 7, "metric": "mae", "margin": 0.0, "min_confidence": 0.9}
    watched = await policies.update(other.policy_id, {"rollback": rule}, utcnow())
    assert watched.rollback == rule
    found = await policies.of_model("tenant-a", "peak")
    assert found is not None
    assert found.rollback == rule
    assert await policies.of_model("tenant-b", "peak") is None

    await policies.delete(other.policy_id)
    with pytest.raises(PolicyNotFound):
        await policies.delete(other.policy_id)
    with pytest.raises(PolicyNotFound):
        await policies.update(other.policy_id, {"enabled": True}, utcnow())


async def test_triggers_are_kept_and_a_running_retrain_is_seen(store: JobStore) -> None:
    policies = PolicyStore(store.database)
    created = await policies.create(policy(), utcnow())
    job = await store.create_job(new_job(model_name="load"))
    earlier = utcnow() - timedelta(hours=30)
    await policies.record_trigger(created.policy_id, job.job_id, "drift", {"x": 1}, earlier)
    now = utcnow()
    await policies.record_trigger(created.policy_id, job.job_id, "new_data", {"y": 2}, now)

    assert await policies.running(created.policy_id)  # its job is queued
    await store.transition(job.job_id, JobEvent.CANCEL)
    assert not await policies.running(created.policy_id)

    assert await policies.fired_since(created.policy_id, now - timedelta(days=1)) == [now]
    page = await policies.triggers(created.policy_id, 1, 10)
    assert page.total == 2
    assert [(t.rule, t.evidence) for t in page.items] == [
        ("new_data", {"y": 2}),
        ("drift", {"x": 1}),
    ]
    await policies.checked(created.policy_id, now)
    assert (await policies.get(created.policy_id)).checked_at == now
