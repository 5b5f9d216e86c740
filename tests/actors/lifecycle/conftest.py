"""The lifecycle tests' fixtures: a migrated SQLite database, and a factory of lifecycles
over it that stops the runs a test left going."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from ray.exceptions import TaskCancelledError

from actors.admission import Admission, TenantLimits
from actors.cluster import ClusterShape
from actors.dispatch import Rules
from actors.ledger import Ledger
from actors.lifecycle import Lifecycle
from actors.metrics import ServiceMetrics
from actors.queue import JobQueue
from actors.reservations import Reservations
from actors.versions import VersionClaims
from db.database import Database
from db.experiments import ExperimentCatalog
from db.jobs import JobStore
from db.registry import ModelRegistry
from pipeline.settings import PipelineSettings
from tests.actors.lifecycle.harness import (
    NODE_ID,
    STAGE_MAX_RETRIES,
    Callbacks,
    FakePlacementGroups,
    Harness,
    Launcher,
    MakeHarness,
)
from tests.databases import migrated_store


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_store("sqlite", tmp_path) as store:
        yield store.database


@pytest.fixture
async def harness_of(database: Database, tmp_path: Path) -> AsyncIterator[MakeHarness]:
    """Makes a lifecycle over the database; afterwards, stops the runs a test left going."""
    made: list[Harness] = []

    async def make(
        capacity: int = 1,
        limits: Mapping[str, TenantLimits] | None = None,
        store: JobStore | None = None,
        max_cpus: int | None = None,
        cluster: ClusterShape | None = None,
        placement_timeout: float = 5.0,
    ) -> Harness:
        store = store or JobStore(database)
        queue = JobQueue()
        launcher = Launcher()
        ledger = Ledger(cluster or ClusterShape.of(capacity, max_cpus=max_cpus or capacity))
        groups = FakePlacementGroups(ledger)
        reservations = Reservations(ledger, groups, prefix="test:")
        lifecycle = Lifecycle(
            store,
            ExperimentCatalog(store.database),
            PipelineSettings(data_dir=tmp_path, stage_max_retries=STAGE_MAX_RETRIES),
            queue,
            Admission(TenantLimits(), limits or {}),
            ServiceMetrics(),
            reservations=reservations,
            rules=Rules(),
            placement_timeout=placement_timeout,
            outage_seconds=1.0,
            versions=VersionClaims(ModelRegistry(database)),
            launch=launcher,
            callbacks_for=Callbacks,
            node_id=NODE_ID,
            wake=lambda: None,
        )
        harness = Harness(store, queue, lifecycle, launcher, ledger, groups, reservations)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        for job_id, run in harness.launcher.runs.items():
            if harness.lifecycle.tracks(job_id):
                run.fail(TaskCancelledError())
                await harness.ended(job_id)
