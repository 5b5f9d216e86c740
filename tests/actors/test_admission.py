"""Admission rules: limits with per-tenant overrides, 429 past the queue limit, reasons."""

from __future__ import annotations

import pytest

from actors.admission import Admission, TenantLimits
from domain.auth import Principal, Role
from domain.errors import Forbidden, TooManyRequests


def admission() -> Admission:
    return Admission(
        TenantLimits(max_running=2, max_queued=3),
        {
            "big": TenantLimits(max_running=4),
            "tiny": TenantLimits(max_queued=0),
            "paused": TenantLimits(max_running=0),
        },
    )


def test_overrides_replace_only_the_fields_they_give() -> None:
    rules = admission()
    assert rules.limits("big") == TenantLimits(max_running=4, max_queued=3)
    assert rules.limits("anyone") == TenantLimits(max_running=2, max_queued=3)


def test_queue_limit_gives_429_with_a_retry_hint() -> None:
    rules = admission()
    rules.admit("anyone", queued=2)
    with pytest.raises(TooManyRequests) as refused:
        rules.admit("anyone", queued=3, retry_after=12)
    assert refused.value.retry_after == 12
    with pytest.raises(TooManyRequests):
        rules.admit("tiny", queued=0)


def test_waiting_reasons_name_the_binding_limit() -> None:
    rules = admission()
    assert not rules.may_start("anyone", running=2)
    assert rules.may_start("big", running=2)
    cpus = "waiting for 4 CPUs (1 of 6 free)"
    reason = rules.waiting_reason("anyone", running=2, ahead=0, higher=0, resources=cpus)
    assert reason == "tenant limit of 2 running jobs reached"
    assert rules.waiting_reason("big", 0, 3, 2, cpus) == "2 higher-priority jobs ahead"
    assert rules.waiting_reason("big", 0, ahead=1, higher=0, resources=cpus) == cpus
    assert rules.waiting_reason("big", 0, ahead=1, higher=0, resources=None) == "1 job ahead"
    assert rules.waiting_reason("big", 0, ahead=0, higher=0, resources=None) == "starting"
    assert not rules.may_start("paused", running=0)
    assert rules.waiting_reason("paused", 0, 0, 0, None).startswith("tenant paused")


def test_principal_rules() -> None:
    member = Principal("a", Role.MEMBER)
    viewer = Principal("a", Role.VIEWER)
    admin = Principal("ops", Role.ADMIN)
    assert member.sees("a")
    assert not member.sees("b")
    assert admin.sees("b")
    assert member.tenant_filter(None) == "a"
    assert admin.tenant_filter(None) is None
    with pytest.raises(Forbidden):
        member.tenant_filter("b")
    member.require_write("a")
    for principal, tenant in ((member, "b"), (viewer, "a")):
        with pytest.raises(Forbidden):
            principal.require_write(tenant)
    with pytest.raises(Forbidden):
        member.require_admin()
    admin.require_write("b")
