"""The MLflow mirror: a detached actor beside the orchestrator that copies finished jobs,
registered models, aliases and promotion decisions (as tags of the version decided
about) into an MLflow tracking server.

It reads only what the service has committed, and writes only to MLflow and to its ledger
(``db.mirror``), so a tracking server that is down or slow never fails or slows a job: the
backlog waits in the service's own tables, and the mirror catches up when the server is
back, after a restart too. An outage is logged once, and the backlog size is a metric.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import ray
from mlflow.exceptions import MlflowException
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from ray.actor import ActorHandle

from actors.mirror_retries import Retries
from actors.mlflow_writer import MlflowWriter, Unmirrorable, is_refusal
from actors.settings import NAMESPACE, MlflowSettings, OrchestratorSettings
from db.database import Database
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.mirror import MirrorLedger
from db.records import AliasChange, MirrorKind, PromotionRecord
from db.registry import ModelRegistry
from domain.errors import ServiceUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Items of each kind taken per pass, so a long backlog does not starve the others.
BATCH = 20
#: The longest wait before an item that failed is tried again.
MAX_RETRY_SECONDS = 3600
JOB, MODEL, ALIAS = (MirrorKind.JOB.value, MirrorKind.MODEL.value, MirrorKind.ALIAS.value)
DECISION = MirrorKind.DECISION.value
#: How much lower than the training workers the mirror's process is scheduled.
MIRROR_NICENESS = 19


class MlflowMirror:
    async def __init__(  # type: ignore[misc]  # Ray awaits an async actor's constructor
        self, database_url: str, settings: MlflowSettings
    ) -> None:
        assert settings.tracking_uri is not None
        os.nice(MIRROR_NICENESS)  # background work: training gets the CPUs first
        self._settings = settings
        database = Database.from_url(database_url)
        self._store = JobStore(database)
        self._ledger = MirrorLedger(database)
        self._catalog = ExperimentCatalog(database)
        self._registry = ModelRegistry(database)
        self._writer = MlflowWriter(settings.tracking_uri, settings.experiment_prefix)
        self._pass = asyncio.Lock()
        self._retries = Retries(settings.poll_seconds, MAX_RETRY_SECONDS)
        self._reachable = True
        self._metrics = CollectorRegistry()
        self._backlog = Gauge(
            "training_mlflow_mirror_backlog",
            "Finished jobs, models, alias changes and decisions not yet mirrored to MLflow.",
            registry=self._metrics,
        )
        self._failing = Gauge(
            "training_mlflow_mirror_failing",
            "Items whose mirroring failed while MLflow answered, waiting to be tried again.",
            registry=self._metrics,
        )
        self._up = Gauge(
            "training_mlflow_mirror_up",
            "1 if the last call to the MLflow tracking server succeeded.",
            registry=self._metrics,
        )
        self._mirrored = Counter(
            "training_mlflow_mirrored",
            "Items written to MLflow, by kind.",
            ("kind",),
            registry=self._metrics,
        )
        self._up.set(1)
        self._loop = asyncio.get_running_loop().create_task(self._mirror_forever())

    async def catch_up(self) -> int:
        """Mirror what waits now; the backlog left (0 when MLflow has everything)."""
        async with self._pass:
            try:
                await self._mirror_jobs()
                await self._mirror_models()
                await self._mirror_aliases()
                await self._mirror_decisions()
                self._reached()
            except (MlflowException, OSError) as error:
                self._unreachable(error)
            backlog = await self._ledger.backlog()
            self._backlog.set(backlog)
            return backlog

    async def metrics_text(self) -> str:
        return generate_latest(self._metrics).decode()

    async def ready(self) -> bool:
        return True

    # ------------------------------------------------------------------ passes

    async def _mirror_jobs(self) -> None:
        for job_id in await self._ledger.pending_jobs(BATCH, self._retries.waiting(JOB)):
            await self._attempt(MirrorKind.JOB, job_id, self._mirror_job(job_id))

    async def _mirror_job(self, job_id: str) -> None:
        """The job's run, its curves written page by page (a long search's are long)."""
        job = await self._store.get_job(job_id)
        experiments = await self._catalog.of_job(job_id)
        runs = await self._write(f"job {job_id}", self._writer.open_job, job, experiments)
        if runs is not None and not runs.complete:
            ids = [e.experiment_id for e in experiments]
            async for page in self._catalog.series_pages(ids):
                await asyncio.to_thread(self._writer.log_curves, runs, page)
            await asyncio.to_thread(self._writer.close_job, job, experiments, runs)
        await self._ledger.record(MirrorKind.JOB, job_id, runs.run_id if runs else "")

    async def _mirror_models(self) -> None:
        for model_id in await self._ledger.pending_models(BATCH, self._retries.waiting(MODEL)):
            await self._attempt(MirrorKind.MODEL, model_id, self._mirror_model(model_id))

    async def _mirror_model(self, model_id: str) -> bool:
        model = await self._registry.get(model_id)
        run_id = await self._ledger.ref(MirrorKind.JOB, model.job_id)
        if run_id is None:  # its job is not mirrored yet
            return False
        version = None  # MLflow refused its job: nothing to attach the version to
        if run_id:
            write = self._writer.write_model
            version = await self._write(f"model {model_id}", write, model, run_id)
        await self._ledger.record(MirrorKind.MODEL, model_id, version or "")
        return True

    async def _mirror_aliases(self) -> None:
        waiting = self._retries.waiting(ALIAS)
        for change in await self._ledger.alias_changes():
            if change.key not in waiting:
                await self._attempt(MirrorKind.ALIAS, change.key, self._mirror_alias(change))

    async def _mirror_alias(self, change: AliasChange) -> bool:
        if change.model_id is None:
            await asyncio.to_thread(
                self._writer.delete_alias, change.tenant_id, change.model_name, change.alias
            )
            await self._ledger.forget(MirrorKind.ALIAS, change.key)
            return False
        version = await self._ledger.ref(MirrorKind.MODEL, change.model_id)
        if version is None:  # the version is not mirrored yet
            return False
        if version:  # (else MLflow refused the version: the alias has nothing to name)
            await self._write(f"alias {change.key}", self._set_alias, change, version)
        await self._ledger.record(MirrorKind.ALIAS, change.key, change.model_id)
        return True

    async def _mirror_decisions(self) -> None:
        for decision in await self._ledger.pending_decisions(
            BATCH, self._retries.waiting(DECISION)
        ):
            key = decision.promotion_id
            await self._attempt(MirrorKind.DECISION, key, self._mirror_decision(decision))

    async def _mirror_decision(self, decision: PromotionRecord) -> bool:
        version = await self._ledger.ref(MirrorKind.MODEL, decision.challenger_id)
        if version is None:  # the version is not mirrored yet
            return False
        if version:  # (else MLflow refused the version: nothing to tag)
            what = f"decision {decision.promotion_id}"
            await self._write(what, self._writer.tag_decision, version, decision)
        await self._ledger.record(MirrorKind.DECISION, decision.promotion_id, version)
        return True

    async def _attempt(self, kind: MirrorKind, key: str, work: Awaitable[bool | None]) -> None:
        """Mirror one item. If it fails while MLflow answers, the item is at fault: it is
        retried in a later pass (``Retries``) and the pass goes on with the next one; if
        MLflow or the database is out, the pass stops (the outage is not the item's)."""
        try:
            done = await work
        except ServiceUnavailable:
            raise
        except Exception as error:
            if not await asyncio.to_thread(self._writer.reachable):
                raise
            failure = self._retries.failed(kind.value, key)
            logger.warning(
                "mirroring %s %s failed (attempt %d); retried in a later pass",
                kind.value,
                key,
                failure.attempts,
                exc_info=error,
            )
        else:
            self._retries.succeeded(kind.value, key)
            if done is not False:
                self._mirrored.labels(kind.value).inc()
        self._failing.set(len(self._retries))

    def _set_alias(self, change: AliasChange, version: str) -> str:
        self._writer.set_alias(change.tenant_id, change.model_name, change.alias, version)
        return version

    async def _write(self, what: str, write: Callable[..., T], *args: Any) -> T | None:
        """One write in a thread; None if MLflow refuses the item itself (logged: the
        item is recorded as done, since retrying would fail the same way)."""
        try:
            return await asyncio.to_thread(write, *args)
        except Unmirrorable as error:
            logger.warning("not mirroring %s: %s", what, error)
        except MlflowException as error:
            if not is_refusal(error):
                raise
            logger.warning("not mirroring %s: MLflow refused it: %s", what, error.message)
        return None

    # ------------------------------------------------------------------ outages

    def _unreachable(self, error: Exception) -> None:
        if self._reachable:
            logger.warning(
                "MLflow at %s is unreachable; mirroring waits (%s)",
                self._settings.tracking_uri,
                error,
            )
        self._reachable = False
        self._up.set(0)

    def _reached(self) -> None:
        if not self._reachable:
            logger.warning("MLflow at %s is reachable again", self._settings.tracking_uri)
        self._reachable = True
        self._up.set(1)

    async def _mirror_forever(self) -> None:
        while True:
            try:
                await self.catch_up()
            except Exception:  # the database, most likely: the next pass tries again
                logger.exception("the MLflow mirror's pass failed")
            await asyncio.sleep(self._settings.poll_seconds)


def start_mirror(database_url: str, settings: OrchestratorSettings) -> ActorHandle[MlflowMirror]:
    """Create the mirror, or return the running one: detached, restarted forever, holding
    no CPU, with MLflow's client told to fail fast (the mirror retries on its own)."""
    timeout = settings.mlflow.request_timeout_seconds
    actor = ray.remote(MlflowMirror).options(
        name=settings.mirror_name,
        namespace=NAMESPACE,
        lifetime="detached",
        max_restarts=-1,
        num_cpus=0,
        get_if_exists=True,
        runtime_env={
            "env_vars": {
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(max(1, timeout))),
            }
        },
    )
    return cast(ActorHandle[MlflowMirror], actor.remote(database_url, settings.mlflow))
