"""Retrain policies: create, list, show, edit, delete, and the retrains each started."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from db.policies import NewPolicy, PolicyRecord
from domain.auth import Principal
from domain.errors import InvalidRequest
from pipeline.config import TrainingConfig
from serve_app.auth import PrincipalDep
from serve_app.dependencies import ServicesDep
from serve_app.params import NameFilter, ResourceId
from serve_app.schemas.policies import (
    PoliciesPublic,
    PolicyCreate,
    PolicyPatch,
    PolicyPublic,
    RollbackBody,
    TriggersPublic,
    needs_quantiles,
)

router = APIRouter(prefix="/ai/training/retrain-policies", tags=["retrain policies"])

PolicyId = ResourceId


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PolicyPublic)
async def create_policy(
    body: PolicyCreate, services: ServicesDep, principal: PrincipalDep
) -> PolicyPublic:
    """Retrain ``job.model_name`` when a rule holds (one policy per tenant and model
    name; 409 for a second)."""
    principal.require_write(body.job.tenant_id)
    policy = NewPolicy(
        tenant_id=body.job.tenant_id,
        model_name=body.job.model_name,
        job=body.job.model_dump(mode="json"),
        rules=body.rules.model_dump(),
        cooldown_seconds=body.cooldown.total_seconds(),
        max_per_day=body.max_per_day,
        window_seconds=body.window.total_seconds() if body.window is not None else None,
        warm_start=body.warm_start,
        enabled=body.enabled,
        rollback=body.rollback.model_dump() if body.rollback is not None else None,
    )
    record = await services.orchestrator.create_policy(policy)
    return PolicyPublic.model_validate(record)


@router.get("", response_model=PoliciesPublic)
async def list_policies(
    services: ServicesDep, principal: PrincipalDep, tenant_id: NameFilter = None
) -> PoliciesPublic:
    records = await services.policies.search(principal.tenant_filter(tenant_id))
    return PoliciesPublic(policies=[PolicyPublic.model_validate(r) for r in records])


@router.get("/{policy_id}", response_model=PolicyPublic)
async def get_policy(
    policy_id: PolicyId, services: ServicesDep, principal: PrincipalDep
) -> PolicyPublic:
    return PolicyPublic.model_validate(await services.policies.get(policy_id, principal.scope))


@router.patch("/{policy_id}", response_model=PolicyPublic)
async def update_policy(
    policy_id: PolicyId, body: PolicyPatch, services: ServicesDep, principal: PrincipalDep
) -> PolicyPublic:
    """Enable, disable or edit; only the fields given change (the job keeps the
    policy's tenant and model name)."""
    policy = await _writable(policy_id, services, principal)
    if body.job is not None and (body.job.tenant_id, body.job.model_name) != (
        policy.tenant_id,
        policy.model_name,
    ):
        raise InvalidRequest(
            "job", "a policy's job keeps its tenant_id and model_name; make a new policy"
        )
    changes = body.changes()
    rollback = changes.get("rollback", policy.rollback)
    job = changes.get("job", policy.job)
    try:
        needs_quantiles(
            RollbackBody.model_validate(rollback) if rollback is not None else None,
            TrainingConfig.model_validate(job["config"]).quantiles,
        )
    except ValueError as exc:
        raise InvalidRequest("rollback.metric", str(exc)) from None
    record = await services.orchestrator.update_policy(policy_id, changes)
    return PolicyPublic.model_validate(record)


@router.delete("/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_policy(
    policy_id: PolicyId, services: ServicesDep, principal: PrincipalDep
) -> Response:
    await _writable(policy_id, services, principal)
    await services.orchestrator.delete_policy(policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{policy_id}/triggers", response_model=TriggersPublic)
async def list_triggers(
    policy_id: PolicyId,
    services: ServicesDep,
    principal: PrincipalDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TriggersPublic:
    """The retrains the policy started, the latest first: the rule that fired, what it
    saw, and the job."""
    await services.policies.get(policy_id, principal.scope)
    return TriggersPublic.of(await services.policies.triggers(policy_id, page, page_size))


async def _writable(policy_id: str, services: ServicesDep, principal: Principal) -> PolicyRecord:
    """Raises: PolicyNotFound (unknown or another tenant's), Forbidden (read-only key)."""
    policy = await services.policies.get(policy_id, principal.scope)
    principal.require_write(policy.tenant_id)
    return policy
