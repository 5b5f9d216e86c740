"""Retrain policies on the orchestrator: gather what is known about each model, ask the
rules (``domain.policies``), and start the retrain they call for.

A retrain is the policy's job with the set's newest rows (no end date; the last
``window`` only, if the policy has one), promoted only on the same evidence as any job
(``promotion``). It starts warm from the champion: the champion's hyperparameters,
without a search (a search's retrain reuses what its search found instead of searching
again). It is submitted with an idempotency key made of what it is a retrain of
(``retrain_key``), so that an orchestrator that dies between the submit and the trigger's
record starts no second one on the next check: the same submit returns the first job,
whose trigger is then recorded. A scheduled retrain the service cannot take yet (database
unavailable, queue full) leaves its fire unchecked, to be tried again. The rule and its
evidence are recorded with the job (``GET /retrain-policies/{id}/triggers``) and in its
log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from actors.submission import JobSubmission
from db.idempotency import POLICY_KEY_PREFIX
from db.monitoring import MonitorStore
from db.policies import PolicyRecord, PolicyStore
from db.records import JobRecord, ModelRecord, NewLog
from db.registry import CHAMPION, ModelRegistry
from domain.cron import latest_fire
from domain.errors import (
    AliasNotFound,
    FeatureSetNotFound,
    ServiceUnavailable,
    TooManyRequests,
    TrainingError,
)
from domain.jobs import LogLevel
from domain.policies import Decision, Facts, Limits, Rules, decide
from pipeline.hyperparameters import KNOWN_HYPERPARAMETERS
from pipeline.models.artifacts import load_metadata
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

logger = logging.getLogger(__name__)

#: Queues a job once per idempotency key: ``Intake.submit``.
Submit = Callable[[JobSubmission, str], Awaitable[tuple[JobRecord, bool]]]
#: Writes a job's log lines.
WriteLogs = Callable[[list[NewLog]], Awaitable[None]]
_DAY = timedelta(days=1)
#: Scored forecasts read for the drift rule, at most.
STATUSES_READ = 100


class RetrainPolicies:
    def __init__(
        self,
        policies: PolicyStore,
        monitoring: MonitorStore,
        registry: ModelRegistry,
        pipeline: PipelineSettings,
        *,
        submit: Submit,
        write_logs: WriteLogs,
    ) -> None:
        self._policies = policies
        self._monitoring = monitoring
        self._registry = registry
        self._pipeline = pipeline
        self._submit = submit
        self._write_logs = write_logs

    async def check(self, now: datetime) -> list[str]:
        """Start the retrains every enabled policy calls for at ``now``; their job ids."""
        started = []
        for policy in await self._policies.search():
            if not policy.enabled:
                continue
            try:
                job_id = await self._check(policy, now)
            except Exception:
                logger.exception("retrain policy %s could not be checked", policy.policy_id)
                continue
            if job_id is not None:
                started.append(job_id)
        return started

    async def _check(self, policy: PolicyRecord, now: datetime) -> str | None:
        rules = Rules(**policy.rules)
        champion = await self._champion(policy)
        facts = await self._facts(policy, rules, champion, now)
        decision = decide(rules, _limits(policy), facts)
        job_id = None
        if decision.rule is not None:
            try:
                job_id = await self._start(policy, decision, champion, now)
            except (ServiceUnavailable, TooManyRequests) as exc:
                # The fire is not marked checked: the next check tries it again, under
                # the same idempotency key.
                logger.warning("retrain policy %s waits: %s", policy.policy_id, exc)
                return None
        if facts.due_fire is not None and decision.rule is not None:
            # A fire held back (the cooldown, the day's limit, a retrain still running) stays
            # owed and runs once allowed: checks run a minute apart, not at a fire's second,
            # so a daily fire under a day's cooldown is held back by seconds on some days.
            await self._policies.checked(policy.policy_id, now)
        return job_id

    async def _champion(self, policy: PolicyRecord) -> ModelRecord | None:
        try:
            return await self._registry.resolve(policy.tenant_id, policy.model_name, CHAMPION)
        except AliasNotFound:
            return None

    async def _facts(
        self, policy: PolicyRecord, rules: Rules, champion: ModelRecord | None, now: datetime
    ) -> Facts:
        cooldown = timedelta(seconds=policy.cooldown_seconds)
        fired = await self._policies.fired_since(policy.policy_id, now - max(cooldown, _DAY))
        statuses: list[str] = []
        new_rows = new_days = None
        last = (await self._policies.triggers(policy.policy_id, 1, 1)).items
        seen = last[0].evidence if last else {}
        if champion is not None:
            if rules.drift_evaluations:
                statuses = await self._statuses_since(champion, seen.get("data_end"))
            if rules.new_rows is not None or rules.new_days is not None:
                new_rows, new_days = await asyncio.to_thread(self._new_data, champion, seen)
        after = policy.checked_at or policy.created_at
        due = latest_fire(rules.cron, rules.timezone, after, now) if rules.cron else None
        return Facts(
            now=now,
            running=await self._policies.running(policy.policy_id),
            fired=fired,
            statuses=statuses,
            new_rows=new_rows,
            new_days=new_days,
            due_fire=due,
        )

    async def _statuses_since(self, champion: ModelRecord, data_end: str | None) -> list[str]:
        """The statuses of the champion's scored forecasts of dates after ``data_end``
        (the last retrain's data), the latest first."""
        since = datetime.fromisoformat(data_end) if data_end else None
        page = await self._monitoring.search(champion.model_id, since, None, 1, STATUSES_READ)
        return [str(e.health.get("status")) for e in page.items]

    def _new_data(
        self, champion: ModelRecord, last: dict[str, Any]
    ) -> tuple[int | None, float | None]:
        """Rows and days the champion's set holds past what the champion was trained on
        and past what the policy's last retrain saw (``last``: its evidence), so that a
        retrain the champion beat is not tried again on the same data."""
        store = FeatureStore(self._pipeline.features_root, champion.tenant_id)
        try:
            current = store.schema(champion.feature_set)
        except FeatureSetNotFound:
            return None, None
        lineage = load_metadata(Location(champion.artifact_uri))["lineage"]
        seen_end = max(
            pd.Timestamp(lineage["test_end"]), pd.Timestamp(last.get("data_end", 0), tz="UTC")
        )
        days = (pd.Timestamp(current.end) - seen_end).total_seconds() / _DAY.total_seconds()
        try:
            trained = store.schema(champion.feature_set, champion.feature_set_version).rows
        except FeatureSetNotFound:  # retention removed it: its days still tell
            return None, max(days, 0.0)
        seen_rows = max(trained, int(last.get("data_rows", 0)))
        return max(current.rows - seen_rows, 0), max(days, 0.0)

    async def _start(
        self, policy: PolicyRecord, decision: Decision, champion: ModelRecord | None, now: datetime
    ) -> str | None:
        assert decision.rule is not None
        evidence = {
            **decision.evidence,
            "champion": champion.model_id if champion else None,
            **await asyncio.to_thread(self._data_seen, policy),
        }
        try:
            submission = await asyncio.to_thread(self._submission, policy, champion)
            job, _ = await self._submit(submission, retrain_key(policy.policy_id, evidence))
        except (ServiceUnavailable, TooManyRequests):
            raise
        except (TrainingError, ValueError) as exc:
            logger.warning("retrain policy %s could not start a job: %s", policy.policy_id, exc)
            return None
        if champion is not None and policy.warm_start:
            evidence["warm_start_from"] = champion.model_id
        await self._policies.record_trigger(
            policy.policy_id, job.job_id, decision.rule.value, evidence, now
        )
        message = f"started by retrain policy {policy.policy_id}: rule {decision.rule} ({evidence})"
        await self._write_logs([NewLog(job.job_id, LogLevel.INFO, message, now, "policy")])
        logger.info("%s %s", job.job_id, message)
        return job.job_id

    def _data_seen(self, policy: PolicyRecord) -> dict[str, Any]:
        """The rows and last timestamp of the set a retrain starts on."""
        store = FeatureStore(self._pipeline.features_root, policy.tenant_id)
        try:
            schema = store.schema(policy.job["config"]["feature_set"])
        except FeatureSetNotFound:
            return {}
        return {"data_rows": schema.rows, "data_end": schema.end}

    def _submission(self, policy: PolicyRecord, champion: ModelRecord | None) -> JobSubmission:
        """The policy's job on the newest rows, warm from the champion if asked."""
        body = dict(policy.job)
        config: dict[str, Any] = {**body["config"], "end_date": None, "promote_champion": True}
        if policy.window_seconds is not None:
            store = FeatureStore(self._pipeline.features_root, policy.tenant_id)
            end = pd.Timestamp(store.schema(config["feature_set"]).end).to_pydatetime()
            start = end.astimezone(UTC) - timedelta(seconds=policy.window_seconds)
            config["start_date"] = start.isoformat()
        if champion is not None and policy.warm_start:
            config["hyperparameters"] = warm_hyperparameters(champion)
            config["enable_hpo"] = False
        return JobSubmission.model_validate({**body, "config": config})


def retrain_key(policy_id: str, evidence: dict[str, Any]) -> str:
    """A retrain's idempotency key: the policy, its champion, the data it starts on and,
    for a schedule, the fire time; the same retrain asked for twice is one job."""
    parts = [
        policy_id,
        evidence.get("champion") or "-",
        evidence.get("data_rows", "-"),
        evidence.get("data_end", "-"),
        evidence.get("fire_time", "-"),
    ]
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]
    return f"{POLICY_KEY_PREFIX}{policy_id}:{digest}"


def warm_hyperparameters(champion: ModelRecord) -> dict[str, Any]:
    """The champion's hyperparameters, as a job takes them (the ones a job may set)."""
    return {
        name: value
        for name, value in champion.params.items()
        if name in KNOWN_HYPERPARAMETERS and isinstance(value, (int, float, str, bool))
    }


def _limits(policy: PolicyRecord) -> Limits:
    return Limits(timedelta(seconds=policy.cooldown_seconds), policy.max_per_day)
