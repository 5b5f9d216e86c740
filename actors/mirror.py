"""The MLflow mirror: a detached actor beside the orchestrator that copies finished jobs,
registered models and aliases into an MLflow tracking server.

It reads only what the service has committed, and writes only to MLflow and to its ledger
(``db.mirror``), so a tracking server that is down or slow never fails or slows a job: the
backlog waits in the service's own tables, and the mirror catches up when the server is
back, after a restart too. An outage is logged once, and the backlog size is a metric.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, cast

import ray
from mlflow.exceptions import MlflowException
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from ray.actor import ActorHandle

from actors.mlflow_writer import MlflowWriter, Unmirrorable, is_refusal
from actors.settings import NAMESPACE, MlflowSettings, OrchestratorSettings
from db.database import Database
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.mirror import AliasChange, MirrorKind, MirrorLedger
from db.registry import ModelRegistry

logger = logging.getLogger(__name__)

#: Items of each kind taken per pass, so a long backlog does not starve the others.
BATCH = 20
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
        self._reachable = True
        self._metrics = CollectorRegistry()
        self._backlog = Gauge(
            "training_mlflow_mirror_backlog",
            "Finished jobs, models and alias changes not yet mirrored to MLflow.",
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
        for job_id in await self._ledger.pending_jobs(BATCH):
            job = await self._store.get_job(job_id)
            experiments = await self._catalog.of_job(job_id)
            curves = await self._catalog.series([e.experiment_id for e in experiments])
            run_id = await self._write(
                f"job {job_id}", self._writer.write_job, job, experiments, curves
            )
            await self._ledger.record(MirrorKind.JOB, job_id, run_id or "")
            self._mirrored.labels(MirrorKind.JOB.value).inc()

    async def _mirror_models(self) -> None:
        for model_id in await self._ledger.pending_models(BATCH):
            model = await self._registry.get(model_id)
            run_id = await self._ledger.ref(MirrorKind.JOB, model.job_id)
            if run_id is None:  # its job is not mirrored yet
                continue
            version = None  # MLflow refused its job: nothing to attach the version to
            if run_id:
                write = self._writer.write_model
                version = await self._write(f"model {model_id}", write, model, run_id)
            await self._ledger.record(MirrorKind.MODEL, model_id, version or "")
            self._mirrored.labels(MirrorKind.MODEL.value).inc()

    async def _mirror_aliases(self) -> None:
        for change in await self._ledger.alias_changes():
            if change.model_id is None:
                await asyncio.to_thread(
                    self._writer.delete_alias, change.tenant_id, change.model_name, change.alias
                )
                await self._ledger.forget(MirrorKind.ALIAS, change.key)
                continue
            version = await self._ledger.ref(MirrorKind.MODEL, change.model_id)
            if version is None:  # the version is not mirrored yet
                continue
            if version:  # (else MLflow refused the version: the alias has nothing to name)
                await self._write(f"alias {change.key}", self._set_alias, change, version)
            await self._ledger.record(MirrorKind.ALIAS, change.key, change.model_id)
            self._mirrored.labels(MirrorKind.ALIAS.value).inc()

    def _set_alias(self, change: AliasChange, version: str) -> str:
        self._writer.set_alias(change.tenant_id, change.model_name, change.alias, version)
        return version

    async def _write(self, what: str, write: Any, *args: Any) -> str | None:
        """One write in a thread; None if MLflow refuses the item itself (logged: the
        item is recorded as done, since retrying would fail the same way)."""
        try:
            return cast(str, await asyncio.to_thread(write, *args))
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
